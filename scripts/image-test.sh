#!/usr/bin/env bash
# End-to-end test of the container image (make image-test): PouchDB Server,
# a fake CHT API whose /setup/poll answers only after API_DELAY seconds, and
# the image with nothing but the environment CHT's compose file gives
# cht-sentinel (COUCH_URL through "haproxy", API_HOST=api, NODE_ENV,
# LOG_LEVEL). It checks that the daemon waits for API (not ready, nothing
# processed, the wait logged), then processes a registration, serves
# /metrics, runs as a non-root user, passes its own healthcheck, and exits 0
# within 5 s of SIGTERM.
#
# Everything talks over the loopback of a network namespace made for the
# run (servers and container alike), so no port of the machine is used
# and nothing leaves it. Needs root, podman with runc, iproute2, curl.
#
#   scripts/image-test.sh [IMAGE]    default localhost/sentinel-go:latest
#
# The container runs read-only, as packaging/compose.sentinel-go.yml runs it.
# Exit 77: this machine cannot run the test (the reason is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${1:-localhost/sentinel-go:latest}
API_DELAY=${API_DELAY:-8}
RUNTIME=${CONTAINER_RUNTIME:-runc}

skip() { echo "image-test: SKIPPED: $*" >&2; exit 77; }
fail() { echo "image-test: FAIL: $*" >&2; echo "--- container log:" >&2; podman logs "$name" 2>&1 | tail -40 >&2 || true; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" = 0 ] || skip "needs root (a network namespace for the run; rootful podman)"
command -v podman >/dev/null || skip "podman is not installed (Debian: apt-get install podman runc)"
command -v "$RUNTIME" >/dev/null || skip "the container runtime $RUNTIME is not installed"
command -v ip >/dev/null || skip "ip (iproute2) is not installed"
podman image exists "$IMAGE" || { echo "image-test: no image $IMAGE (make image)" >&2; exit 1; }

t0=$(now)
run=sentinel-image-test-$$
name=$run
state=${TMPDIR:-/tmp}/$run
mkdir -p "$state"
ns=$run
cleanup() {
  podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  [ -f "$state/api.pid" ] && kill "$(cat "$state/api.pid")" 2>/dev/null || true
  POUCHDB_STATE=$state/pouchdb scripts/pouchdb.sh stop >/dev/null 2>&1 || true
  # Whatever else is left in the namespace was started by this run.
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT
ip netns add "$ns" || skip "cannot make a network namespace (ip netns add)"
ip -n "$ns" link set lo up
in_ns() { ip netns exec "$ns" "$@"; }
couch=http://admin:pass@127.0.0.1:5984

# The servers, inside the namespace.
in_ns env POUCHDB_STATE="$state/pouchdb" scripts/pouchdb.sh start 5984 >/dev/null
in_ns curl -fsS -X PUT "$couch/medic" >/dev/null
python3 - "$state/docs.json" <<'PY'
import json, sys, time
settings = json.load(open("testdata/demo/settings.json"))
docs = [d for d in json.load(open("testdata/demo/docs.json")) if d["_id"] in ("district", "hc", "clinic", "chw", "reg1")]
for d in docs:
    if d.get("reported_date") == "$now":
        d["reported_date"] = int(time.time() * 1000)
json.dump({"docs": [{"_id": "settings", "settings": settings}] + docs}, open(sys.argv[1], "w"))
PY
in_ns curl -fsS -X POST "$couch/medic/_bulk_docs" -H 'Content-Type: application/json' -d @"$state/docs.json" >/dev/null
# Started directly, not through in_ns: $! must be the server's own pid.
ip netns exec "$ns" python3 scripts/fake_cht_api.py 5988 "$API_DELAY" >"$state/api.log" 2>&1 </dev/null &
echo $! >"$state/api.pid"
api_started=$(now)
echo "image-test: servers up in $(since "$t0") s (PouchDB Server, fake CHT API ready in ${API_DELAY} s)"

# The image, with CHT's environment only: the names resolve to the
# namespace's loopback as they resolve to the services on CHT's network.
# podman would schedule the image's HEALTHCHECK with systemd timers (none
# here): the test runs the same command itself, with podman exec.
started=$(now)
podman run -d --name "$name" --runtime "$RUNTIME" --network "ns:/run/netns/$ns" \
  --add-host haproxy:127.0.0.1 --add-host api:127.0.0.1 \
  --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 --no-healthcheck --read-only \
  -e COUCH_URL=http://admin:pass@haproxy:5984/medic -e API_HOST=api -e NODE_ENV=production -e LOG_LEVEL=info \
  "$IMAGE" >/dev/null || skip "podman cannot run a container here (see its error above)"

get() { in_ns curl -sS -o "$state/body" -w '%{http_code}' "http://127.0.0.1:7988$1" 2>/dev/null || echo 000; }
wait_for() { # wait_for WHAT SECONDS COMMAND...
  local what=$1 limit=$2; shift 2
  local begin; begin=$(now)
  until "$@"; do
    awk -v a="$begin" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }' && fail "timed out ($limit s) waiting for $what"
    sleep 0.2
  done
}
listening() { [ "$(get /healthz)" = 200 ]; }
wait_for "/healthz" 10 listening

# While API is not ready: alive, not ready, nothing processed, the wait logged.
pid=$(podman inspect --format '{{.State.Pid}}' "$name")
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
[ "$uid" != 0 ] || fail "the daemon runs as root"
grep -q "waiting for CHT API" "$state/body" || fail "/healthz does not say it waits for API: $(cat "$state/body")"
code=$(get /readyz)
[ "$code" = 503 ] && grep -q "waiting for CHT API at http://api:5988" "$state/body" || fail "/readyz while waiting: $code $(cat "$state/body")"
wait_for "the wait logged" 5 sh -c "podman logs $name 2>&1 | grep -q 'Waiting for CHT API'"
podman exec "$name" /sentinel healthcheck >/dev/null || fail "the image's healthcheck fails while it waits for API"
[ "$(in_ns curl -s -o /dev/null -w '%{http_code}' "$couch/medic-sentinel/reg1-info")" != 200 ] || fail "reg1 processed before CHT API answered"
echo "image-test: waiting for API: /healthz 200, /readyz 503, logged, nothing processed, uid $uid"

# Once API answers: the registration is processed, metrics served.
registered() { in_ns curl -fsS "$couch/medic-sentinel/reg1-info" 2>/dev/null | grep -q '"registration"'; }
wait_for "reg1 processed" $((API_DELAY + 20)) registered
processed_after=$(since "$started")
api_ready_after=$(awk -v a="$api_started" -v b="$started" -v d="$API_DELAY" 'BEGIN { printf "%.1f", d - (b - a) }')
in_ns curl -fsS "$couch/medic/reg1" | grep -q '"patient_id"' || fail "reg1 has no patient_id after the registration"
ready() { [ "$(get /readyz)" = 200 ]; }
wait_for "/readyz" 10 ready
[ "$(get /metrics)" = 200 ] && grep -q 'sentinel_changes_total{outcome="changed"}' "$state/body" || fail "/metrics: no sentinel_changes_total"
podman exec "$name" /sentinel healthcheck >/dev/null || fail "the image's healthcheck fails once running"
# Into a file first: grep -q quitting early would fail the pipe (pipefail).
podman logs "$name" >"$state/container.log" 2>&1
grep -q "CHT API is ready" "$state/container.log" || fail "the end of the wait is not logged"
echo "image-test: registration processed ${processed_after} s after the start (API answered after about ${api_ready_after} s); /readyz 200, /metrics served"

# SIGTERM: exit 0 within 5 s.
stop_begin=$(now)
podman stop -t 10 "$name" >/dev/null
took=$(since "$stop_begin")
code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
awk -v t="$took" 'BEGIN { exit !(t < 5) }' || fail "took $took s to stop after SIGTERM"
echo "image-test: stopped with exit 0 in $took s after SIGTERM"
echo "image-test: passed in $(since "$t0") s"
