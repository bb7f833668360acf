# Every target sets up its own virtual environment when it is missing or older than pyproject.toml.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export MPLBACKEND ?= Agg

.PHONY: install test demo lint bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(PY) -m ruff check minifastai tests examples bench

test: install lint
	$(PY) -m pytest -q -n 2 --durations=10 tests

demo: install
	$(PY) examples/demo.py

bench: install
	$(PY) bench/overhead.py

clean:
	rm -rf $(VENV) site out models
