# Two targets that work on a fresh machine. The pinned torch is installed first: it is the CPU
# build (a local wheel here); an unpinned torch would pull several GB of CUDA packages.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
DEMO_OUT ?= runs/demo

.PHONY: setup demo test clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# The main job. At this stage: render SynthGaze in the MPIIFaceGaze layout, read it back, inspect it.
demo: setup
	$(BIN)/workbench data synth --view face --format mpiifacegaze --n 512 --subjects 8 --seed 0 --out $(DEMO_OUT)/data --force
	$(BIN)/workbench data inspect $(DEMO_OUT)/data --out $(DEMO_OUT)/data_grid.png

test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) runs
