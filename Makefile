# Set-up on a fresh machine: `make demo` (installs, then renders the demo clip) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0  # CPU wheel first; the project admits any torch >= 2.1
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps facenet-pytorch==2.6.0  # it pins torch<2.3; we supply what it needs
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/jasr-video --demo

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m jasr_video.bench
