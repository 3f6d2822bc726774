# jobledger: `make run` serves on SQLite, `make test` runs every test. Both install into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@echo "Create the first admin, once (or: $(BIN)/jobledger users create --email you@example.com --role admin):"
	@echo "  curl -X POST http://127.0.0.1:8000/api/v1/auth/setup -H 'Content-Type: application/json' \\"
	@echo "       -d '{\"email\": \"you@example.com\", \"password\": \"a long password\"}'"
	JOBLEDGER_DATABASE_URL="$${JOBLEDGER_DATABASE_URL:-sqlite:///var/jobledger.db}" $(BIN)/jobledger serve

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check domain projections api tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
