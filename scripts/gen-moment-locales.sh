#!/bin/sh
# Regenerates templates/momentdata/*.json and templates/testdata/moment/*.json
# from Moment.js (installed with npm in a scratch directory, never in the
# repository). Needs node and npm. MOMENT_VERSION defaults to the version the
# reference ships (messages.md §4.2).
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
version=${MOMENT_VERSION:-2.30.1}
scratch=${MOMENT_SCRATCH:-$(mktemp -d /tmp/momentgen.XXXXXX)}
if [ ! -d "$scratch/node_modules/moment" ]; then
	(cd "$scratch" && npm install --no-save --silent "moment@$version")
fi
TZ=UTC node "$repo/scripts/gen-moment-locales.js" "$scratch/node_modules/moment" "$repo"
