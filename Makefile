# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   - creates .venv if missing, installs, fetches DermaMNIST (28 px), runs the quickstart
#   make test   - creates .venv if missing, installs, runs ruff (lint + format check) and the test suite
#                 (make test-all adds the tests marked slow)
# torch is installed first and pinned while the rest installs (TORCH=... picks another build,
# e.g. make test TORCH=torch==2.14.1 for a CUDA machine).

PYTHON ?= python3.11
VENV ?= .venv
TORCH ?= torch==2.13.0
DATA_ROOT ?= $(HOME)/.medmnist
BIN := $(VENV)/bin
STAMP := $(VENV)/.fedunlearn-installed

.PHONY: install lint test test-all demo clean

$(STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; install Python 3.11 or pass PYTHON=/path/to/python3.11" >&2; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	echo "$(TORCH)" > $(VENV)/torch-constraint.txt
	$(BIN)/python -m pip install -q -c $(VENV)/torch-constraint.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two workers, one test file per worker at a time (a file's Ray and process fixtures stay together).
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

test-all: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

demo: $(STAMP)
	$(BIN)/fedunlearn data fetch --dataset dermamnist --size 28 --data-root $(DATA_ROOT) --if-present-ok
	$(BIN)/fedunlearn run configs/quickstart.yaml --data-root $(DATA_ROOT)

clean:
	rm -rf $(VENV) .pytest_cache
