# Two commands on a fresh machine: `make run` (quickstart) and `make test` (whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export OMP_NUM_THREADS ?= 1

.PHONY: run test lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# torch first, pinned to the local CPU wheel; a bare `torch` would pull CUDA packages.
	$(BIN)/python -m pip install "torch==2.13.0"
	$(BIN)/python -m pip install -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/hybridmd run inputs/quickstart.yaml --overwrite

test: $(STAMP)
	$(BIN)/ruff check hybridmd tests benchmarks workflows
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check hybridmd tests benchmarks workflows

clean:
	rm -rf $(VENV) runs build *.egg-info
