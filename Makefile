# One command to run the product, one to test it. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench package clean

$(STAMP): requirements.txt requirements-aggregator.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

## run: the whole product on 127.0.0.1 (admin :5000, short links :8080). Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/python -m local_stack

## test: the whole suite (unit, integration on the local stack, browser, deploy checks).
test: $(STAMP)
	$(BIN)/python -m pytest

## bench: benchmarks against the recipe's handler; writes BENCHMARKS.md.
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-* .cache build dist .pytest_cache
