# pycdi: the two commands are `make up` and `make test`.
.PHONY: help setup up test lint unit bench clean

VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

help: ## List the targets.
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: ## Install system packages when missing, and a .venv with pycdi (idempotent).
	@bash scripts/setup.sh

up: setup ## Run the embedded cluster in the foreground (state in ./.pycdi).
	$(BIN)/pycdi up

lint: setup ## ruff, mypy (package) and import-linter (the layers of DESIGN.md).
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup lint ## Lint, then the whole test suite.
	$(BIN)/python -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

unit: setup ## Only the unit tests.
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: setup ## The benchmarks; prints a table and writes bench/results.json.
	$(BIN)/python -m bench

clean: ## Remove the virtual environment and local cluster state.
	rm -rf $(VENV) .pycdi
