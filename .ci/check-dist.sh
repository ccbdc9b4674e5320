#!/usr/bin/env bash
# The wheel in dist/, installed with no extras into a fresh venv, as `pip install setwise`
# would: none of the optional packages comes with it, `setwise demo` runs, and a feature
# that needs an extra says which one. Usage: check-dist.sh [PYTHON] (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-python3}
wheel=$(ls dist/setwise-*.whl)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
    echo "check-dist: $*" >&2
    exit 1
}

# The license travels in both: pyproject's "MIT" and the LICENSE file with its text.
"$python" -m zipfile -l "$wheel" | grep 'dist-info/licenses/LICENSE ' >/dev/null || fail "the wheel holds no LICENSE"
tar -tzf dist/setwise-*.tar.gz | grep '/LICENSE$' >/dev/null || fail "the sdist holds no LICENSE"

"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel"
echo "check-dist: $("$work/venv/bin/python" --version), $(basename "$wheel") installed with no extras"
echo "check-dist: site-packages holds $(du -sh "$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" | cut -f1)"

for name in pyarrow matplotlib psycopg pymysql numpy; do
    if "$work/venv/bin/python" -m pip show --quiet "$name" >/dev/null 2>&1; then
        fail "$name was installed with the core wheel"
    fi
done

# `import setwise` loads no optional package and no CLI package.
"$work/venv/bin/python" - <<'EOF'
import sys

import setwise

heavy = {"rich", "typer", "sqlglot", "pyarrow", "psycopg", "pymysql", "matplotlib"}
loaded = sorted(heavy & {name.split(".")[0] for name in sys.modules})
assert not loaded, f"import setwise loaded {loaded}"
print(f"check-dist: import setwise {setwise.__version__} loaded none of {sorted(heavy)}")
EOF

# Each expected failure: exit status 1 and the extra named on stderr.
expect_extra() {
    local extra=$1
    shift
    local status=0
    (cd "$work" && "$work/venv/bin/setwise" "$@") >"$work/out" 2>"$work/err" || status=$?
    if [ "$status" -ne 1 ] || ! grep -qF "pip install 'setwise[$extra]'" "$work/err"; then
        cat "$work/out" "$work/err" >&2
        fail "setwise $* exited $status without naming the $extra extra"
    fi
    echo "check-dist: setwise $* -> $(cat "$work/err")"
}

(cd "$work" && "$work/venv/bin/setwise" demo --dir "$work" >"$work/demo.out") ||
    { cat "$work/demo.out" >&2; fail "setwise demo failed"; }
echo "check-dist: setwise demo ran ($(wc -l <"$work/demo.out") lines)"

db="sqlite:///$work/setwise.db"
echo "id,price" >"$work/x.parquet"
expect_extra parquet apply books --from x.parquet --db "$db" --yes
expect_extra chart bench --rows 10 --chart x.png --db "$db"
expect_extra postgresql plan books --from x.parquet --db "postgresql+psycopg://127.0.0.1/test"
expect_extra mysql plan books --from x.parquet --db "mariadb+pymysql://127.0.0.1/test"
echo "check-dist: ok"
