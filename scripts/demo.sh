#!/usr/bin/env bash
# make demo: start PouchDB Server on 127.0.0.1, load testdata/demo/ settings,
# translations and docs, run the daemon until the backlog is processed, print
# what it did per doc, then stop everything.
#
# It shares nothing with other servers or daemons on the machine: PouchDB
# Server gets a free port (DEMO_PORT to choose one) and its own state
# directory (kept afterwards, for the daemon's log), and the daemon serves no
# /metrics (--listen ''), so neither can collide with a port in use.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SENTINEL_BIN:-./bin/sentinel}
PORT=${DEMO_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
# A state directory of its own: a fixed one would be shared with (and its
# server stopped by) another demo running on the machine.
export POUCHDB_STATE=$(mktemp -d "${TMPDIR:-/tmp}/sentinel-go-demo.XXXXXX")
DB=demo
LOG=$POUCHDB_STATE/sentinel.log

URL=$(scripts/pouchdb.sh start "$PORT")
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  scripts/pouchdb.sh stop
}
trap cleanup EXIT

python3 scripts/demo.py load "$URL" "$DB" testdata/demo
echo "# starting sentinel (log: $LOG)"
COUCH_URL="$URL/$DB" "$BIN" --log-format console --listen '' >"$LOG" 2>&1 &
pid=$!
python3 scripts/demo.py report "$URL" "$DB" testdata/demo
