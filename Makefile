# The two commands a newcomer needs: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench demo fuzz clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/d24watch init
	$(BIN)/d24watch run

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/lint-imports --no-cache
	@if [ -x $(BIN)/hadolint ]; then $(BIN)/hadolint --no-color Dockerfile; \
	else echo "hadolint is not available on this platform: Dockerfile not linted"; fi

typecheck: $(STAMP)
	$(BIN)/mypy

# The workspace's browser tests drive Debian's Chromium; installed here when missing and possible
# (as root, with apt-get), otherwise those tests skip and say why.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser tests"; \
		(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1)) || \
		echo "chromium could not be installed: the browser tests will skip"; \
	else echo "chromium is not installed and cannot be installed here: the browser tests will skip"; fi

test: $(STAMP) lint typecheck browser
	$(BIN)/python -m pytest -W error -q

$(VENV)/.bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(VENV)/.bench

bench: $(VENV)/.bench
	$(BIN)/python bench/run_all.py

fuzz: $(STAMP)
	D24WATCH_FUZZ_EXAMPLES=2000 $(BIN)/python -m pytest -W error -q tests/test_fuzz.py --hypothesis-show-statistics

demo: $(STAMP)
	$(BIN)/d24watch demo

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
