#!/usr/bin/env bash
# make demo: start PouchDB Server on 127.0.0.1, load testdata/demo/ settings,
# translations and docs, run the daemon until the backlog is processed, print
# what it did per doc, then stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${DEMO_PORT:-5989}
export POUCHDB_STATE=${TMPDIR:-/tmp}/sentinel-go-demo
DB=demo
LOG=$POUCHDB_STATE/sentinel.log

scripts/pouchdb.sh stop >/dev/null 2>&1 || true
URL=$(scripts/pouchdb.sh start "$PORT")
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  scripts/pouchdb.sh stop
}
trap cleanup EXIT

python3 scripts/demo.py load "$URL" "$DB" testdata/demo
echo "# starting sentinel (log: $LOG)"
COUCH_URL="$URL/$DB" ./bin/sentinel --log-format console >"$LOG" 2>&1 &
pid=$!
python3 scripts/demo.py report "$URL" "$DB" testdata/demo
