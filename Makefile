# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGIN_DIRS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format catalogue dist clean

install: $(STAMP)

$(STAMP): pyproject.toml $(addsuffix pyproject.toml,$(PLUGIN_DIRS))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,ray]" $(addprefix -e ./,$(PLUGIN_DIRS))
	touch $@

demo: $(STAMP)
	$(PY) -m fusecpath demo

test: lint
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check fusecpath plugins tests benchmarks
	$(PY) -m ruff format --check fusecpath plugins tests benchmarks

format: $(STAMP)
	$(PY) -m ruff format fusecpath plugins tests benchmarks
	$(PY) -m ruff check --fix fusecpath plugins tests benchmarks

catalogue: $(STAMP)
	$(PY) -m fusecpath.catalogue --write

# Wheel + sdist of the core and every plugin into dist/: `python -m build` (PEP 517, isolated: each
# project is built by the backend its own [build-system] names, and the wheel is built from the sdist,
# so a file missing from an sdist fails here, not on a user's machine).
dist: $(STAMP)
	rm -rf dist
	$(PY) -m build --outdir dist .
	for d in $(PLUGIN_DIRS); do $(PY) -m build --outdir dist $$d || exit 1; done
	ls dist

clean:
	rm -rf $(VENV) .pytest_cache dist
