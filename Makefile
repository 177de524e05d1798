# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGIN_DIRS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format catalogue clean

install: $(STAMP)

$(STAMP): pyproject.toml $(addsuffix pyproject.toml,$(PLUGIN_DIRS))
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,ray]" $(addprefix -e ./,$(PLUGIN_DIRS))
	touch $@

demo: $(STAMP)
	$(PY) -m fusecpath.demo

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

clean:
	rm -rf $(VENV) .pytest_cache
