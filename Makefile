# The two entry points of the quick start are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PS := $(BIN)/policysync

.PHONY: demo test lint typecheck unit schemas bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-installs only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	@echo "== policysync validate policies    (the sample policies)"
	@$(PS) validate policies
	@echo
	@echo "== policysync validate tests/cases/sample-broken/policies    (a broken copy of them)"
	@$(PS) validate tests/cases/sample-broken/policies; status=$$?; \
	  echo "exit code $$status: the broken copy is rejected, as intended"; test $$status -eq 1

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check policysync tests bench
	$(BIN)/ruff format --check policysync tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict policysync

unit: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

test: lint typecheck unit

# Regenerates schemas/*.schema.json from the models (a test fails when they are stale).
schemas: $(VENV)/.installed
	$(BIN)/python -m policysync.schemas --write

# Both benchmarks run even when the first misses its target; either miss fails the target.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@status=0; \
	  echo "== bench/validate_bench.py"; \
	  $(BIN)/python bench/validate_bench.py || status=1; \
	  echo; echo "== bench/emulator_bench.py"; \
	  $(BIN)/python bench/emulator_bench.py || status=1; \
	  exit $$status

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis bench/out
