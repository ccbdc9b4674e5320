#!/usr/bin/env bash
# The Galera cluster the `galera` test backend runs on: `up` before the tests, `down` after.
#   up:   install galera-4 and rsync from Debian's packages if missing, start the 3-node
#         cluster (../shared/galera/up.sh, about 15-25 s), and remember that we started it;
#   down: stop it, only if `up` started it (a cluster someone left running stays running).
set -euo pipefail
cd "$(dirname "$0")/.."
GALERA=${GALERA_SCRIPTS:-../shared/galera}
MARK=${GALERA_BASE:-/tmp/galera}/.started-by-make-test

answers() {  # does node 1 take connections as the test user?
  mariadb-admin --no-defaults -ugalera -pgalera -h127.0.0.1 -P4306 --connect-timeout=2 \
    ping >/dev/null 2>&1
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
    "$GALERA/up.sh" >/dev/null
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
