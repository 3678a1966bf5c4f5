# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv if needed and install the pinned dependencies from requirements.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out/demo

.PHONY: demo test lint bench peers check-larcv3 notebook clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

demo: $(STAMP)
	$(BIN)/python -m lartpcnet.demo --out $(OUT)

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/lartpcnet bench engine

peers:
	bash benchmarks/peers.sh

clean:
	rm -rf $(VENV) out

# docs/tutorial.ipynb, re-executed with its outputs kept (the dev extras add the notebook runner)
notebook: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python scripts/make_tutorial.py

check-larcv3: $(STAMP)
	bash scripts/check_larcv3.sh
