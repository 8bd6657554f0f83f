# Two commands on a fresh machine: `make run` (quickstart) and `make test` (whole suite and the
# documentation site, built in strict mode: a broken link or a missing page fails it).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export OMP_NUM_THREADS ?= 1

.PHONY: run test lint docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# torch first, pinned to the local CPU wheel; a bare `torch` would pull CUDA packages.
	$(BIN)/python -m pip install "torch==2.13.0"
	$(BIN)/python -m pip install -e ".[test,docs]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/hybridmd run inputs/quickstart.yaml --overwrite

test: $(STAMP)
	$(BIN)/ruff check hybridmd tests benchmarks workflows docs/hooks
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	$(BIN)/python -m pytest

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict    # -> build/site/index.html; `$(BIN)/mkdocs serve` to browse

lint: $(STAMP)
	$(BIN)/ruff check hybridmd tests benchmarks workflows docs/hooks

clean:
	rm -rf $(VENV) runs build *.egg-info
