# Two commands set everything up on a fresh machine:
#   make demo   the main job on the built-in default (FreeDict de-en, tiny model, 2 CPU ranks)
#   make test   the test suite
# Both create .venv (torch==2.13.0 first, the rest under requirements/constraints.txt)
# when it is missing or older than setup.py / the constraints.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= runs/demo
export OMP_NUM_THREADS ?= 1

.PHONY: venv demo test lint clean
venv: $(STAMP)

$(STAMP): setup.py requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c requirements/constraints.txt -e ".[all]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m data_prep demo --out $(DEMO_OUT)
	$(VENV)/bin/deepspeed --num_accelerators 2 training/train.py \
		--config training/configs/tiny-cpu.yaml data=$(DEMO_OUT)/shards run_dir=$(DEMO_OUT)/train

test: $(STAMP)
	$(PY) -m pytest -q tests

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) runs .cache
