# The two commands of the README:
#   make run    set everything up, then serve the hub on 127.0.0.1:8080
#   make test   set everything up, then run the whole test suite
# Each target installs what it needs, so both work on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= etc/statushub.toml
PYTEST_ARGS ?=

.PHONY: run test lint-imports deps system-deps venv plugin-cache node-deps crossbar bench clean

run: deps
	$(BIN)/twistd -n --pidfile= statushub --config $(CONFIG)

# lint-imports first: an import that runs back up a layer (.importlinter,
# docs/HACKING.md) fails the build before any test runs
test: deps
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint-imports: venv
	$(BIN)/lint-imports

deps: system-deps venv plugin-cache node-deps crossbar

# Debian packages: a Docker engine for the tests' private dockerd, a static
# busybox for the test image, Chromium for the browser tests, ss (iproute2)
# to read a listening socket's backlog, Prometheus to scrape the hub's
# /metrics in the tests, Redis for several hubs as one (the tests start their
# own server on loopback; the package's own service is never used), faketime
# (libfaketime) to run a test hub with its clock behind.
SYSTEM_PACKAGES := docker.io busybox-static chromium nodejs iproute2 prometheus redis-server faketime
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

venv: $(BIN)/.installed
$(BIN)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# compat mode puts the checkout on sys.path, so twistd finds twisted/plugins here
	$(BIN)/pip install -q -e '.[test]' --config-settings editable_mode=compat
	touch $@

# twistd finds plugins through twisted/plugins; write the cache once so that
# the first twistd start does not try to (and warn that it cannot).
plugin-cache: venv
	$(BIN)/python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"

# Node packages for the WAMP tests and examples (autobahn 22.11.1 is the last
# line that runs on Node 20; autobahn-browser ships autobahn.min.js), and
# bench/'s ws, which tests/test_storm.py's clients use too.
NODE_DIRS := tests/node examples/node bench/wamp bench
node-deps:
	@for d in $(NODE_DIRS); do \
	  if [ ! -d $$d/node_modules ] || [ $$d/package.json -nt $$d/node_modules ]; then \
	    echo "npm install in $$d"; \
	    (cd $$d && npm install --no-audit --no-fund --loglevel=error) && touch $$d/node_modules || exit 1; \
	  fi; done

# Crossbar.io pins its own dependencies: it lives in its own virtual
# environment, never in the hub's.  Start a router with etc/crossbar/start
# (etc/crossbar/README.md).
CROSSBAR_VENV := .crossbar-venv
CROSSBAR_VERSION ?= 26.10.1
crossbar: $(CROSSBAR_VENV)/bin/.installed
$(CROSSBAR_VENV)/bin/.installed:
	$(PYTHON) -m venv $(CROSSBAR_VENV)
	$(CROSSBAR_VENV)/bin/pip install -q --upgrade pip
	$(CROSSBAR_VENV)/bin/pip install -q 'crossbar==$(CROSSBAR_VERSION)'
	$(CROSSBAR_VENV)/bin/crossbar version >/dev/null
	touch $@

# The benchmarks (bench/, BENCHMARKS.md); not tests, nothing fails on a time.
# Quick run: make bench BENCH_SIZES=1000 BENCH_REPEAT=1 BENCH_IDLE_ROUNDS=0 BENCH_ENGINE=0 BENCH_STORM=0 BENCH_GC=0
# (BENCH_SUBSCRIPTIONS=0 skips the many-deployments one, BENCH_LOGS=0 the log followers'.)
# Results: bench/results/{latest,subscriptions,engine,storm,gcpause,logs}.json and the tables on stdout.
bench: deps
	$(BIN)/pip install -q -r bench/requirements.txt
	cd bench && npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/subscriptions.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/storm.py
	$(BIN)/python bench/gcpause.py
	$(BIN)/python bench/logs.py

clean:
	rm -rf $(VENV) build *.egg-info
