# The README's two commands: `make demo` and `make test`. Both create the venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
CORE := $(VENV)/.core-$(HASH)
STAMP := $(VENV)/.installed-$(HASH)

.PHONY: demo test lint typecheck bench browser clean

# `make demo` needs the core package only (pydantic, rfc8785, cryptography).
$(CORE): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.core-* && touch $(CORE)

# Tests, lint and benchmarks add the dev extras (CDK, moto, Playwright, schemathesis, ...) and
# the bench extras (LangGraph's SQLite savers, DBOS): `tests/benchmarks` runs the baselines the
# benchmarks compare with, and mypy checks `bench/` against their types.
$(STAMP): $(CORE)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

$(VENV)/.browser: $(STAMP)
	bash .ci/install-browser
	touch $@

demo: $(CORE)
	$(BIN)/python examples/demo.py

test: $(STAMP) $(VENV)/.browser
	bash .ci/install-postgres
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy shared functions infra tests examples bench

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	PYTHONPATH=. $(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .durable-graph cdk.out
