# The two commands: `make demo` and `make test`. Both create .venv and install on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# torch and torchvision are installed together and pinned to a matching pair (PyPI's CUDA builds run on the CPU).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: install test test-fast lint bench demo clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e ".[dev]" $(TORCH_PINS)
	touch $@

install: $(VENV)/.installed

# The whole suite, with the slowest tests listed so that a regression shows.
test: install
	$(PY) -m pytest -q --durations=15

# The contributor's lane: no fresh processes, scripts or training runs (under 2 minutes on 2 cores).
test-fast: install
	$(PY) -m pytest -q -m "not slow" --durations=15

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Reports go to benchmarks/runs/ (ignored by git); `make bench BENCH_ARGS=--update-committed-results` rewrites the
# committed ones in benchmarks/results/.
bench: install
	$(PY) -m benchmarks.run --preset small $(BENCH_ARGS)

# The embedded demo model classifies new motion clips (picture: demo-output/demo.png); `make demo VIDEO=clip.mp4`
# classifies your own video. The repository holds the model's weights, configs and card; the demo writes its code files
# into examples/xvit-motion-small from the installed package (git ignores them there).
demo: install
	$(PY) examples/demo.py $(if $(VIDEO),--video "$(VIDEO)")

clean:
	rm -rf $(VENV) build *.egg-info
