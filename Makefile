# genai-meter: every set-up step lives here, so a fresh machine needs only `make <target>`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := prometheus prometheus-alertmanager chromium
# Fonts the PDF reports embed: DejaVu (Latin, Greek, Cyrillic, ...) and Noto CJK (Chinese, Japanese, Korean).
FONT_PACKAGES := fonts-dejavu-core fonts-noto-cjk
# FinOps focus-validator in a venv of its own: it needs Python 3.12 (numpy < 2 has no wheels for newer).
FOCUS_VENV := .venv-focus
FOCUS_STAMP := $(FOCUS_VENV)/.installed
# The first Python 3.12 that runs: python3.12 on PATH (a pyenv shim may not), else a pyenv install.
FOCUS_PYTHON ?= $(firstword $(foreach p,python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12),\
  $(shell $(p) -c 'import sys; assert sys.version_info[:2] == (3, 12); print(sys.executable)' 2>/dev/null)))

.PHONY: install system-deps fonts focus-validator lint test test-fast bench sanitize demo generate screenshot clean

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
	@$(MAKE) --no-print-directory fonts

# The PDF's fonts (genai_meter/reports/render/fonts.py looks for these files).
fonts:
	@if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || [ ! -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ]; then \
	  echo "installing Debian packages: $(FONT_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(FONT_PACKAGES); \
	fi

# focus-validator 2.2.1 (FOCUS 1.2 model offline), beside its numpy < 2 pin: pyarrow < 16.
# tests/reports/render/test_focus_validator.py runs it on a real export.
$(FOCUS_STAMP):
	@if [ -z "$(FOCUS_PYTHON)" ]; then \
	  echo "focus-validator needs Python 3.12: no python3.12 on PATH or in ~/.pyenv/versions (set FOCUS_PYTHON=/path/to/python3.12)" >&2; \
	  exit 1; \
	fi
	$(FOCUS_PYTHON) -m venv $(FOCUS_VENV)
	$(FOCUS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FOCUS_VENV)/bin/python -m pip install --quiet 'focus-validator==2.2.1' 'pyarrow<16'
	touch $(FOCUS_STAMP)

focus-validator: $(FOCUS_STAMP)

# Lint and types first: a ruff or mypy error fails the run like a failing test.
lint: install
	$(VENV)/bin/ruff check genai_meter tests benchmarks
	$(VENV)/bin/mypy

test: install system-deps focus-validator lint
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: install
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

bench: install
	$(PY) -m benchmarks

# The five C accelerators built with AddressSanitizer and UBSan into $(SANITIZE_DIR) (never over the in-place
# build), then their tests and a differential fuzz against the Python references for SANITIZE_SECONDS
# (docs/performance.md). Python is not built with ASan: its runtime is preloaded; PYTHONMALLOC=malloc gives
# every Python object to ASan's allocator; leaks are not checked (CPython keeps objects until exit by design).
SANITIZE_DIR := build/sanitize
SANITIZE_SECONDS ?= 120
SANITIZE_CFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1
SANITIZE_TESTS := tests/receiver/test_extract_accelerated.py tests/metering/test_tally.py \
	tests/receiver/test_tally_params.py tests/exporters/test_group_add.py tests/receiver/test_span_times.py \
	tests/reports/render/test_call_csv.py
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
	rm -rf $(VENV) $(FOCUS_VENV) build *.egg-info
