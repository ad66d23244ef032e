# genai-meter: every set-up step lives here, so a fresh machine needs only `make <target>`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := prometheus prometheus-alertmanager chromium

.PHONY: install system-deps lint test test-fast bench demo generate screenshot clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,reports,clickhouse]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages for the real components (Prometheus, promtool, Alertmanager, amtool) and the
# headless Chromium the web page's tests drive.
system-deps:
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

# Lint and types first: a ruff or mypy error fails the run like a failing test.
lint: install
	$(VENV)/bin/ruff check genai_meter tests benchmarks
	$(VENV)/bin/mypy

test: install system-deps lint
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: install
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

bench: install
	$(PY) -m benchmarks

# Options go through ARGS: make demo ARGS="--reports-listen 127.0.0.1:8081 --rate 5"
demo: install system-deps
	$(VENV)/bin/genai-meter demo $(ARGS)

# deploy/ is generated from deploy/genai-meter.yaml; tests/alert_rules/test_generate.py fails on drift.
generate: install
	$(VENV)/bin/genai-meter generate --config deploy/genai-meter.yaml --out deploy

# docs/screenshot.png: the page over 30 days of synthetic history, taken by headless Chromium.
screenshot: install system-deps
	$(PY) -m tests.web.screenshot docs/screenshot.png

clean:
	rm -rf $(VENV) build *.egg-info
