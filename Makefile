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

.PHONY: venv demo test test-tf5 lint clean
venv: $(STAMP)

$(STAMP): setup.py requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c requirements/constraints.txt -e ".[all]"
	touch $(STAMP)

# The demo answers the paper's question on real data at toy scale: MT alone versus
# MT+Align->MT, same tiny model, same steps of MT at the end, then eval and a report.
DS := OMP_NUM_THREADS=1 $(VENV)/bin/deepspeed --num_accelerators 2 training/train.py \
	--config training/configs/tiny-cpu.yaml
demo: $(STAMP)
	$(PY) -m data_prep demo --out $(DEMO_OUT)
	$(PY) -m data_prep build freedict corpus.path=$(DEMO_OUT)/corpus/ \
		tokenizer=$(DEMO_OUT)/tokenizer curriculum=MT --out $(DEMO_OUT)/shards-mt --overwrite
	$(DS) data=$(DEMO_OUT)/shards-mt run_dir=$(DEMO_OUT)/mt
	$(DS) data=$(DEMO_OUT)/shards run_dir=$(DEMO_OUT)/mt-align-mt
	for run in mt mt-align-mt; do \
		$(PY) -m eval run --grid freedict corpus.path=$(DEMO_OUT)/corpus/ --max-new-tokens 64 \
			--model $(DEMO_OUT)/$$run/export/model --out $(DEMO_OUT)/$$run/eval || exit 1; \
	done
	$(PY) -m eval report $(DEMO_OUT)/mt $(DEMO_OUT)/mt-align-mt --baseline mt --out $(DEMO_OUT)/report

test: $(STAMP)
	$(PY) -m pytest -q tests

# The same code under transformers 5 (what GPU images carry; `make test` keeps 4.57 for
# unbabel-comet): a second venv from requirements/tf5.txt, then the decoder, planner and
# training tests in it. Measured on 2 cores shared with other jobs: the venv in about
# 5 min; the 61 tests (decoder + tests/training) in 16 min at load ~4.
VENV_TF5 ?= .venv-tf5
TF5_STAMP := $(VENV_TF5)/.installed
TF5_TESTS ?= tests/eval/test_decode.py tests/training
$(TF5_STAMP): requirements/tf5.txt
	test -x $(VENV_TF5)/bin/python || $(PYTHON) -m venv $(VENV_TF5)
	$(VENV_TF5)/bin/python -m pip install -q --upgrade "pip>=24"
	$(VENV_TF5)/bin/python -m pip install -q torch==2.13.0
	$(VENV_TF5)/bin/python -m pip install -q -r requirements/tf5.txt
	touch $(TF5_STAMP)

test-tf5: $(TF5_STAMP)
	PYTHONPATH=$(CURDIR) $(VENV_TF5)/bin/python -c "import transformers as t; assert t.__version__ >= '5', t.__version__"
	PYTHONPATH=$(CURDIR) $(VENV_TF5)/bin/python -m pytest -q $(TF5_TESTS)

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) runs .cache
