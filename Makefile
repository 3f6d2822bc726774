# jobledger: `make run` serves on SQLite, `make test` runs every test. Both install into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run

.PHONY: install run test stress bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	touch $(STAMP)

#: What serving needs, without the test and dev tools (make test and make lint install those).
$(RUN_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

install: $(STAMP)

run: $(RUN_STAMP)
	JOBLEDGER_DATABASE_URL="$${JOBLEDGER_DATABASE_URL:-sqlite:///var/jobledger.db}" $(BIN)/jobledger serve

#: CI passes "-rfE --durations=20" so that a failed run ends with what failed and why.
PYTEST_ARGS ?=

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

#: The suite RUNS times in random order, half of them beside LOAD CPU-bound processes, then a
#: table of every test that failed at least once (not part of make test).
RUNS ?= 4
LOAD ?= 2

stress: $(STAMP)
	.ci/services
	$(BIN)/python .ci/stress.py --runs $(RUNS) --load $(LOAD) $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check domain projections api stores worker tests bench examples .ci
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
