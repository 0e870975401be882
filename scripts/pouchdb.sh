#!/usr/bin/env bash
# Installs (once, cached outside the repo) and starts/stops PouchDB Server on
# 127.0.0.1 for tests and the demo. It shares its cache with the conformance
# runner (../shared/conformance/run.py), so the npm install happens once.
#
#   scripts/pouchdb.sh start [PORT]   prints the admin URL (http://admin:pass@127.0.0.1:PORT)
#   scripts/pouchdb.sh stop
#   scripts/pouchdb.sh install
set -euo pipefail
VERSION=4.2.0
CACHE=${CONFORMANCE_CACHE:-$HOME/.cache/sentinel-conformance}
HOME_DIR="$CACHE/pouchdb-server-$VERSION"
BIN="$HOME_DIR/node_modules/pouchdb-server/bin/pouchdb-server"
STATE=${POUCHDB_STATE:-${TMPDIR:-/tmp}/sentinel-go-pouchdb}

install() {
  [ -x "$BIN" ] || [ -f "$BIN" ] && return 0
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  if [ ! -f "$BIN" ]; then
    partial="$HOME_DIR.partial-$$"
    rm -rf "$partial"
    echo "# installing pouchdb-server@$VERSION into $HOME_DIR (about a minute, once)" >&2
    npm install --prefix "$partial" --no-audit --no-fund --ignore-scripts --loglevel=error "pouchdb-server@$VERSION" >&2
    mv "$partial" "$HOME_DIR"
  fi
  flock -u 9
}

start() {
  install
  local port=${1:-5987}
  mkdir -p "$STATE"
  if [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
    cat "$STATE/url"; return 0
  fi
  rm -rf "$STATE/data"; mkdir -p "$STATE/data"
  (cd "$STATE/data" && exec setsid node "$BIN" --port "$port" --host 127.0.0.1 --in-memory \
      --no-stdout-logs --dir "$STATE/data" --config "$STATE/data/config.json" \
      >"$STATE/server.log" 2>&1 </dev/null) &
  echo $! >"$STATE/pid"
  for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/" >/dev/null || { echo "pouchdb-server did not start:" >&2; tail -20 "$STATE/server.log" >&2; exit 1; }
  # An admin party rejects basic auth: create the admin the daemon and tests use.
  curl -fsS -X PUT "http://127.0.0.1:$port/_config/admins/admin" -d '"pass"' >/dev/null 2>&1 || true
  echo "http://admin:pass@127.0.0.1:$port" >"$STATE/url"
  cat "$STATE/url"
}

stop() {
  if [ -f "$STATE/pid" ]; then
    pid=$(cat "$STATE/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$STATE/pid" "$STATE/url"
  fi
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 install|start [PORT]|stop" >&2; exit 2 ;;
esac
