# xdsi - IHE XDS-I.b registry, repository and imaging document source
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench

# Install (again) only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/xdsi serve --data-dir ./data --host 127.0.0.1 --port 8080 --mllp-port 2575 --dicom-port 11112

test: $(STAMP)
	$(BIN)/pytest -q tests/

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every benchmark scenario beside its same-run reference; table in bench/RESULTS.md.
# BENCH_ARGS=--quick for reduced sizes, BENCH_ARGS=--only=documents,audit for some.
bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)
