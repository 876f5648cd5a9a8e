# Dev/CI entry points. Both `make demo` and `make test` build what they need on a
# fresh machine and reuse it when it is up to date.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MSGS := .build/msgs_install
MSGS_STAMP := $(MSGS)/.built
APT_STAMP := .build/.apt_installed
# Debian packages used by tests (firmware build + simulation). Installed when apt is permitted.
APT_PACKAGES ?= cmake g++ make gcc-avr avr-libc arduino-core-avr arduino-mk simavr libsimavr-dev tmux
REQS := requirements/ros.txt requirements/base.txt requirements/dev.txt
ENV := source scripts/env.sh &&

.PHONY: venv msgs apt demo test bench clean help

help:
	@echo "make demo   - simulated rover demo (closed loop, CPU backend)"
	@echo "make test   - full test suite"
	@echo "make bench  - model and pipeline benchmarks (JSON in artifacts/)"

venv: $(STAMP)
$(STAMP): $(REQS) setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(PY) -m pip install -q -r requirements/ros.txt -r requirements/base.txt -r requirements/dev.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

msgs: $(MSGS_STAMP)
$(MSGS_STAMP): $(STAMP) $(wildcard edge_inference_msgs/msg/*.msg) edge_inference_msgs/CMakeLists.txt edge_inference_msgs/package.xml scripts/build_msgs.sh $(wildcard third_party/tf2_msgs/msg/*.msg) third_party/tf2_msgs/CMakeLists.txt
	scripts/build_msgs.sh $(VENV) $(MSGS)
	touch $@

apt: $(APT_STAMP)
$(APT_STAMP): Makefile
	@mkdir -p .build
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	      || echo "WARNING: apt-get install failed for: $$missing (tests needing them will skip)"; \
	  fi; \
	else echo "NOTE: apt not permitted here; firmware tests will skip"; fi
	touch $@

demo: msgs apt
	$(ENV) $(PY) -m edge_inference.cli demo

test: msgs apt
	$(ENV) $(PY) -m pytest -q -ra test

bench: msgs
	@mkdir -p artifacts
	$(ENV) $(PY) -m edge_inference.cli bench --act-car --json artifacts/bench.json

clean:
	rm -rf .build $(VENV)
