#!/usr/bin/env bash
# The Galera cluster the `galera` test backend runs on: `up` before the tests, `down` after.
#   up:   install galera-4 and rsync from Debian's packages if missing, start the 3-node
#         cluster (../shared/galera/up.sh, about 15-25 s; from empty datadirs when none of
#         its nodes is running), and remember that we started it;
#   down: stop it, only if `up` started it (a cluster someone left running stays running).
set -euo pipefail
cd "$(dirname "$0")/.."
# The scripts live in ../shared beside the checkout; a clone made elsewhere (a temporary
# directory) finds them beside the repository it was cloned from.
GALERA=${GALERA_SCRIPTS:-../shared/galera}
if [ ! -x "$GALERA/up.sh" ] && origin=$(git config --get remote.origin.url 2>/dev/null) \
    && [ -x "$origin/../shared/galera/up.sh" ]; then
  GALERA=$origin/../shared/galera
fi
MARK=${GALERA_BASE:-/tmp/galera}/.started-by-make-test

answers() {  # do all three nodes take connections as the test user?
  local port
  for port in 4306 4307 4308; do
    mariadb-admin --no-defaults -ugalera -pgalera -h127.0.0.1 -P$port --connect-timeout=2 \
      ping >/dev/null 2>&1 || return 1
  done
}

case "${1:-}" in
  up)
    missing=()
    [ -f /usr/lib/galera/libgalera_smm.so ] || missing+=(galera-4)
    command -v rsync >/dev/null || missing+=(rsync)
    if [ ${#missing[@]} -gt 0 ]; then
      echo "[galera] installing ${missing[*]}" >&2
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if answers; then
      echo "[galera] cluster already running: using it, leaving it running" >&2
      exit 0
    fi
    # A cluster that does not answer was left by a session that ended: its nodes were
    # killed, but their pid files and crashed datadirs stayed behind in $GALERA_BASE.
    # A stale pid file fools up.sh's wait into "node died"; a fresh start avoids both.
    base=${GALERA_BASE:-/tmp/galera}
    if pgrep -f -- "--defaults-file=$base/n" >/dev/null; then
      for n in 1 2 3; do  # keep the pid files of live nodes only
        pgrep -f -- "--defaults-file=$base/n$n.cnf" >/dev/null || rm -f "$base/n$n.pid"
      done
      "$GALERA/up.sh" >/dev/null
    else
      GALERA_FRESH=1 "$GALERA/up.sh" >/dev/null
    fi
    touch "$MARK"
    ;;
  down)
    if [ -f "$MARK" ]; then
      rm -f "$MARK"
      "$GALERA/down.sh"
    fi
    ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
