# powerstrip: `make run` starts the gateway, `make test` runs every test, `make bench` measures it. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: all venv deps deps-bench run test fuzz bench bench-quick bench-policy bench-relay bench-instructions bench-profile clean distclean

all: venv

# The virtualenv with powerstrip installed in editable mode and the test extras. Redone only when
# pyproject.toml changes (or the venv is missing).
venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	@touch $@

# System packages (docker.io, busybox-static, iproute2, iptables, etcd-server): installed only when missing.
deps:
	@scripts/install-deps.sh

# The gateway on ./powerstrip.sock, in front of /var/run/docker.sock or a private dockerd under ./.run/.
run: deps venv
	@scripts/run.sh

# Unit and integration tests (the integration tests start their own dockerd in a network namespace).
test: deps venv
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The fuzz properties of tests/unit/test_fuzz.py (head parser, chunked scanner, canonicaliser) with many more
# examples than `make test` gives them (FUZZ_EXAMPLES, default 20000; a few minutes).
FUZZ_EXAMPLES ?= 20000
fuzz: venv
	POWERSTRIP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/pytest -q tests/unit/test_fuzz.py

# The benchmark suite (docs/benchmarks.md): a private dockerd, HAProxy and powerstrip side by side, ~10 min.
$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(VENV)/bin/python -m pip install -q -e '.[test,bench]'
	@touch $@

deps-bench:
	@scripts/install-deps.sh --bench

bench: deps-bench venv $(BENCH_STAMP)
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

bench-quick: deps-bench venv $(BENCH_STAMP)
	$(VENV)/bin/python -m bench --quick $(BENCH_ARGS)

# What the built-in policy costs (docs/policy.md#speed).
bench-policy: deps-bench venv $(BENCH_STAMP)
	$(VENV)/bin/python -m bench.policy $(BENCH_ARGS)

# QoS figures (docs/qos.md): limit accuracy at 1/10/100 Mbit/s, unlimited traffic with QoS present, ~1 min.
.PHONY: bench-qos
bench-qos: deps venv $(BENCH_STAMP)
	$(VENV)/bin/python -m bench.qos $(BENCH_ARGS)

# The unhooked relay's own CPU per request against a fake daemon, A/B with HAProxy and a bare uvloop relay.
bench-relay: deps-bench venv $(BENCH_STAMP)
	$(VENV)/bin/python -m bench.relay_ab $(BENCH_ARGS)

# The instructions each relay executes per request (callgrind, c=1, fake daemon): noise-free, ~3 minutes.
bench-instructions: deps-bench venv $(BENCH_STAMP)
	$(VENV)/bin/python -m bench.instructions $(BENCH_ARGS)

# Where the time of the unhooked relay path goes (py-spy, under wrk load).
bench-profile: deps-bench venv $(BENCH_STAMP)
	$(VENV)/bin/python -m bench.profile $(BENCH_ARGS)

clean:
	@if [ -f .run/dockerd.pid ] && kill -0 "$$(cat .run/dockerd.pid)" 2>/dev/null; then \
		echo "stopping the private dockerd of make run"; kill -TERM "$$(cat .run/dockerd.pid)"; \
		for i in $$(seq 1 60); do kill -0 "$$(cat .run/dockerd.pid)" 2>/dev/null || break; sleep 0.5; done; \
	fi
	@if [ -d .run ]; then \
		grep -o " $(CURDIR)/.run/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true; \
		rm -rf .run; \
	fi
	@ip link del ps-run0 2>/dev/null || true
	rm -rf powerstrip.sock .pytest_cache .powerstrip build dist
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
