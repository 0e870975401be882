# sentinel-go: build, test, demo, conformance.
#
#   make demo          run the daemon on a demo database and show what it did
#   make test          everything CI runs (unit, integration against PouchDB Server, differential, conformance)
#   make conformance   every public conformance scenario, with counts
#   make image         the container image; make image-test runs it in CHT's environment

SHELL := /bin/bash
GO ?= go
SHARED ?= ../shared
BIN := bin/sentinel
POUCHDB := scripts/pouchdb.sh
TEST_PORT ?= 5987
# SENTINEL_TEST_COUCH (an admin URL, no database) runs the integration tests,
# the conformance suites and the bench against that server (e.g. a CouchDB 3)
# instead of a PouchDB Server of their own: see the README's Testing section.
COUCH_ARG := $(if $(SENTINEL_TEST_COUCH),--couch-url $(SENTINEL_TEST_COUCH),)
CONFORMANCE := python3 $(SHARED)/conformance/run.py --sut 'exec ./bin/sentinel' --jobs 2 $(COUCH_ARG)

.PHONY: image image-test bench chaos all build test unit lint integration differential conformance conformance-listed demo clean pouchdb-start pouchdb-stop fuzz install

all: build

build:
	$(GO) build -o $(BIN) ./cmd/sentinel

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) build -o bin/errlint ./internal/lint/errlint/cmd/errlint
	$(GO) vet -vettool=$(CURDIR)/bin/errlint ./...

# Unit and integration tests: PouchDB Server is started on 127.0.0.1 for the
# tests that need a real server (they skip without SENTINEL_TEST_COUCH).
integration: build
	@if [ -n "$$SENTINEL_TEST_COUCH" ]; then \
	  SENTINEL_BIN=$(CURDIR)/$(BIN) $(GO) test -race -count=1 ./...; \
	else \
	  url=$$($(POUCHDB) start $(TEST_PORT)) || exit 1; \
	  trap '$(POUCHDB) stop' EXIT; \
	  SENTINEL_TEST_COUCH=$$url SENTINEL_BIN=$(CURDIR)/$(BIN) $(GO) test -race -count=1 ./...; \
	fi

# Group commit against one change at a time (pipeline/differential_test.go):
# DIFF_CASES random workloads per mode (three modes), without -race (the
# integration run above keeps the default small count under -race).
DIFF_CASES ?= 700
differential:
	DIFF_CASES=$(DIFF_CASES) $(GO) test -count=1 -run='^TestDifferential$$' ./pipeline

conformance-listed: build
	$(CONFORMANCE) $$(grep -v '^#' testdata/conformance-suites.txt | sed '/^$$/d; s#^#$(SHARED)/conformance/scenarios/#; s#$$#.json#')

# Each fuzz target runs for a bounded time (FUZZTIME) on top of its seed corpus.
FUZZTIME ?= 10s
FUZZ_TARGETS := jsexpr:FuzzEval templates:FuzzRender validation:FuzzCompile smsparse:FuzzParse transitions:FuzzLoad pipeline:FuzzProcess pipeline:FuzzDifferential schedule/recur:FuzzParse
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
	  if ! $(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) ./$$pkg >/tmp/sentinel-fuzz.log 2>&1; then \
	    if grep -q 'context deadline exceeded' /tmp/sentinel-fuzz.log && ! grep -q 'Failing input written' /tmp/sentinel-fuzz.log; then \
	      echo "  (the fuzzing engine's own deadline flake on a loaded machine, no failing input: ignored)"; \
	    else tail -30 /tmp/sentinel-fuzz.log; exit 1; fi; \
	  fi; \
	done

test: lint integration differential fuzz conformance-listed

conformance: build
	$(CONFORMANCE) $(SHARED)/conformance/scenarios

# Backlog throughput against PouchDB Server (../shared/tools/bench.py) for both
# workloads, with the daemon's peak RSS (logged when it stops).
BENCH_N ?= 2000
bench: build
	@for w in registration noop; do \
	  python3 $(SHARED)/tools/bench.py --sut 'exec ./bin/sentinel' --workload $$w --n $(BENCH_N) $(COUCH_ARG) | tail -1; \
	  log=$$(ls -t $${TMPDIR:-/tmp}/sentinel-bench-*/*.log | head -1); \
	  grep -o '"max_rss_kib":[0-9]*' $$log | tail -1 | sed "s/\"max_rss_kib\":/peak RSS ($$w): /; s/$$/ KiB/"; \
	done
	$(GO) test -run='^$$' -bench=. -benchmem ./templates ./jsexpr ./validation ./smsparse ./lineage ./schedule

# Crash safety: SIGKILL mid-backlog again and again (../shared/tools/chaos.py).
CHAOS_N ?= 20000
CHAOS_KILLS ?= 20
chaos: build
	python3 $(SHARED)/tools/chaos.py --sut 'exec ./bin/sentinel' --n $(CHAOS_N) --kills $(CHAOS_KILLS) | tail -1

demo: build
	scripts/demo.sh

# Install as a systemd service: the binary, the unit and (only when absent,
# never overwriting a real one) the example environment file. DESTDIR stages
# the tree elsewhere (packaging, tests).
PREFIX ?= /usr/local
UNITDIR ?= /etc/systemd/system
ENVDIR ?= /etc/sentinel-go
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/sentinel
	install -d $(DESTDIR)$(UNITDIR)
	sed 's#/usr/local/bin/sentinel#$(PREFIX)/bin/sentinel#' packaging/sentinel.service >$(DESTDIR)$(UNITDIR)/sentinel.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sentinel.service
	@if [ -e $(DESTDIR)$(ENVDIR)/env ]; then echo "$(DESTDIR)$(ENVDIR)/env exists: kept"; \
	  else install -D -m 0600 packaging/sentinel.env.example $(DESTDIR)$(ENVDIR)/env; fi

# The container image (packaging/Containerfile): a static binary on an
# empty base, built with podman without pulling anything, and its end-to-end
# test in CHT's environment (scripts/image-test.sh: needs root, podman and
# runc; exit 77 when this machine cannot run containers).
IMAGE ?= localhost/sentinel-go:latest
image:
	scripts/image.sh $(IMAGE)

image-test: image
	scripts/image-test.sh $(IMAGE)

pouchdb-start:
	$(POUCHDB) start $(TEST_PORT)

pouchdb-stop:
	$(POUCHDB) stop

clean:
	rm -rf bin
