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

# The main job: train gazenet on SynthGaze, explain it, prune it, distill it into a student (with the
# no-teacher control), quantize to int8, profile and benchmark every model, export ONNX, write the report.
# Prints the path of the report. Re-running skips the finished stages.
demo: setup
	$(BIN)/workbench run examples/demo.toml --out $(DEMO_OUT)

test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) runs
