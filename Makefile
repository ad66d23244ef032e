# genai-meter: every set-up step lives here, so a fresh machine needs only `make <target>`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := prometheus prometheus-alertmanager chromium

.PHONY: install system-deps lint test test-fast bench sanitize demo generate screenshot clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
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

# The four C accelerators built with AddressSanitizer and UBSan into $(SANITIZE_DIR) (never over the in-place
# build), then their tests and a differential fuzz against the Python references for SANITIZE_SECONDS
# (docs/performance.md). Python is not built with ASan: its runtime is preloaded; PYTHONMALLOC=malloc gives
# every Python object to ASan's allocator; leaks are not checked (CPython keeps objects until exit by design).
SANITIZE_DIR := build/sanitize
SANITIZE_SECONDS ?= 120
SANITIZE_CFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1
SANITIZE_TESTS := tests/receiver/test_extract_accelerated.py tests/metering/test_tally.py \
	tests/receiver/test_tally_params.py tests/exporters/test_group_add.py tests/receiver/test_span_times.py
# reports go to $(SANITIZE_DIR)/report.<pid> (pytest would swallow them with the test's stderr), shown on failure
SANITIZE_ENV := LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:log_path=$(CURDIR)/$(SANITIZE_DIR)/report \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/$(SANITIZE_DIR)/report \
	PYTHONMALLOC=malloc GENAI_METER_SANITIZED=$(SANITIZE_DIR)/lib
SANITIZE_REPORTS := (cat $(SANITIZE_DIR)/report.* 2>/dev/null; false)

sanitize: install
	rm -rf $(SANITIZE_DIR) && mkdir -p $(SANITIZE_DIR)
	CFLAGS="$(SANITIZE_CFLAGS)" LDFLAGS="-fsanitize=address,undefined" $(PY) setup.py build_ext --force \
		--build-lib $(SANITIZE_DIR)/lib --build-temp $(SANITIZE_DIR)/tmp > $(SANITIZE_DIR)/build.log 2>&1 || (cat $(SANITIZE_DIR)/build.log; false)
	$(PY) -m tests.support.sanitized $(SANITIZE_DIR)/lib
	$(SANITIZE_ENV) $(PY) -m pytest -q -p no:cacheprovider -p tests.support.sanitized -m "not slow" $(SANITIZE_TESTS) \
		|| $(SANITIZE_REPORTS)
	$(SANITIZE_ENV) $(PY) -m tests.support.fuzz_accelerators --seconds $(SANITIZE_SECONDS) || $(SANITIZE_REPORTS)
	@! ls $(SANITIZE_DIR)/report.* 2>/dev/null || $(SANITIZE_REPORTS)

demo: install system-deps
	$(VENV)/bin/genai-meter demo

# deploy/ is generated from deploy/genai-meter.yaml; tests/alert_rules/test_generate.py fails on drift.
generate: install
	$(VENV)/bin/genai-meter generate --config deploy/genai-meter.yaml --out deploy

# docs/screenshot.png: the page over 30 days of synthetic history, taken by headless Chromium.
screenshot: install system-deps
	$(PY) -m tests.web.screenshot docs/screenshot.png

clean:
	rm -rf $(VENV) build *.egg-info
