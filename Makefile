# Dev/CI entry points. `make demo`, `make test` and `make test-robot` build what they need
# on a fresh machine and reuse it when it is up to date.
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
REQS := requirements/ros.txt requirements/base.txt requirements/dev.txt requirements/test.txt
MSG_SRCS := $(wildcard edge_inference_msgs/msg/*.msg) edge_inference_msgs/CMakeLists.txt edge_inference_msgs/package.xml \
  scripts/build_msgs.sh scripts/fix_wheel_cmake_paths.sh $(wildcard third_party/tf2_msgs/msg/*.msg) third_party/tf2_msgs/CMakeLists.txt
ENV := source scripts/env.sh &&
# The robot profile: the robot's Python (3.12) and Ubuntu noble's library versions, no torch.
ROBOT_PYTHON ?=
ROBOT_VENV := .venv-robot
ROBOT_PY := $(ROBOT_VENV)/bin/python
ROBOT_STAMP := $(ROBOT_VENV)/.installed
ROBOT_BUILD := .build/robot
ROBOT_MSGS := $(ROBOT_BUILD)/msgs_install
ROBOT_REQS := requirements/ros.txt requirements/robot-noble.txt requirements/test.txt
ROBOT_ENV := EI_VENV=$(ROBOT_VENV) EI_MSGS=$(ROBOT_MSGS) source scripts/env.sh &&

.PHONY: venv msgs apt demo test bench clean help robot-venv robot-msgs test-robot test-lerobot

help:
	@echo "make demo       - simulated rover demo (closed loop, CPU backend)"
	@echo "make test       - full test suite (dev profile: .venv, newest libraries, torch)"
	@echo "make test-robot - the suite on the robot's Python 3.12 and Ubuntu 24.04 library versions, no torch"
	@echo "make bench      - model and pipeline benchmarks (JSON in artifacts/)"
	@echo "make test-lerobot - LeRobot 0.4.4 loads an export-dataset output and trains ACT on it (~6 GB venv)"

venv: $(STAMP)
$(STAMP): $(REQS) setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(PY) -m pip install -q -r requirements/ros.txt -r requirements/base.txt -r requirements/dev.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

msgs: $(MSGS_STAMP)
$(MSGS_STAMP): $(STAMP) $(MSG_SRCS)
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
	@mkdir -p .build
	@$(ENV) $(PY) -m pytest -q -ra --junitxml=.build/junit.xml test; rc=$$?; \
	  $(PY) scripts/test_summary.py .build/junit.xml dev || true; exit $$rc

# A second venv on CPython 3.12 (found, never installed: scripts/find_python.sh; or ROBOT_PYTHON=...)
# with requirements/robot-noble.txt, its own interface build, and the same suite.
robot-venv: $(ROBOT_STAMP)
$(ROBOT_STAMP): $(ROBOT_REQS) setup.py scripts/find_python.sh
	@py=$$(scripts/find_python.sh 3.12 $(ROBOT_PYTHON)) || { echo "make test-robot: stopped (no Python 3.12)" >&2; exit 1; }; \
	  if [ "$$($(ROBOT_PY) -c 'import sys; print(sys.version_info[:2] == (3, 12))' 2>/dev/null)" != True ]; then \
	    echo "$(ROBOT_VENV): $$py"; rm -rf $(ROBOT_VENV) && "$$py" -m venv $(ROBOT_VENV); fi
	$(ROBOT_PY) -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(ROBOT_PY) -m pip install -q -r requirements/ros.txt -r requirements/robot-noble.txt -r requirements/test.txt
	$(ROBOT_PY) -m pip install -q --no-deps --no-build-isolation -e .
	@if $(ROBOT_PY) -c 'import torch' 2>/dev/null; then echo "error: torch got into $(ROBOT_VENV); the robot has none" >&2; exit 1; fi
	touch $@

robot-msgs: $(ROBOT_MSGS)/.built
$(ROBOT_MSGS)/.built: $(ROBOT_STAMP) $(MSG_SRCS)
	scripts/build_msgs.sh $(ROBOT_VENV) $(ROBOT_MSGS)
	touch $@

test-robot: robot-msgs apt
	@$(ROBOT_ENV) $(ROBOT_PY) -m pytest -q -rfE --junitxml=$(ROBOT_BUILD)/junit.xml test; rc=$$?; \
	  $(ROBOT_PY) scripts/test_summary.py $(ROBOT_BUILD)/junit.xml robot || true; exit $$rc

bench: msgs
	@mkdir -p artifacts
	$(ENV) $(PY) -m edge_inference.cli bench --act-car --json artifacts/bench.json

# LeRobot's own LeRobotDataset + ACTPolicy on what export-dataset writes (docs/LEROBOT.md). Not in CI:
# its venv is ~6 GB (a CUDA torch that torchvision matches). FFmpeg libs for torchcodec via apt.
LEROBOT_VENV ?= .venv-lerobot
LEROBOT_STAMP := $(LEROBOT_VENV)/.installed
LEROBOT_FFMPEG ?= libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavdevice59 libavfilter8
$(LEROBOT_STAMP): requirements/lerobot-compat.txt
	test -x $(LEROBOT_VENV)/bin/python || $(PYTHON) -m venv $(LEROBOT_VENV)
	$(LEROBOT_VENV)/bin/python -m pip install -q -r requirements/lerobot-compat.txt
	$(LEROBOT_VENV)/bin/python -m pip install -q --no-deps lerobot==0.4.4
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(LEROBOT_FFMPEG) >/dev/null \
	    || echo "WARNING: FFmpeg libraries for torchcodec not installed: $(LEROBOT_FFMPEG)"; fi
	touch $@

test-lerobot: msgs $(LEROBOT_STAMP)
	@rm -rf .build/lerobot && mkdir -p .build/lerobot
	$(ENV) $(PY) -m edge_inference.cli gen-demos --out .build/lerobot/demos --episodes 2 --seconds 20 --bag-episodes 2 --imu-drives 0
	$(ENV) $(PY) -m edge_inference.cli export-dataset .build/lerobot/demos/bag --out .build/lerobot/dataset --repo-id local/sim_demo --quiet
	$(ENV) $(PY) test/lerobot_compat/check_lerobot_load.py reference .build/lerobot/demos/bag --out .build/lerobot/ref.npz
	HF_HUB_OFFLINE=1 $(LEROBOT_VENV)/bin/python test/lerobot_compat/check_lerobot_load.py check .build/lerobot/dataset \
	  --repo-id local/sim_demo --reference .build/lerobot/ref.npz --steps 1

clean:
	rm -rf .build $(VENV) $(ROBOT_VENV)
