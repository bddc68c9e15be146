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

.PHONY: venv demo test test-unit test-tf5 lint docs clean
venv: $(STAMP)

$(STAMP): setup.py requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c requirements/constraints.txt -e ".[all]"
	touch $(STAMP)

# The demo answers the paper's question at toy scale, on real data: {full, LoRA} x
# {MT, MT+Align->MT} from one shared base model, same data, batch, seed and step budget,
# each evaluated on the FreeDict test grid and on held-out AlignInstruct samples, in one
# report against full / MT. Every step is a file target on its inputs (code, configs,
# data), so a rerun redoes only what changed; a training run folder is resumed only when
# it was started by the same command on the same inputs, and removed first otherwise.
D := $(DEMO_OUT)
DEMO_PORT ?= 29500
# Optimizer steps of the base stage, and of each fine-tuning run: the MT runs take
# DEMO_STEPS steps of MT, the MT+Align->MT runs DEMO_STEPS/2 steps in each stage.
BASE_STEPS ?= 300
DEMO_STEPS ?= 300
# Held-out (dev split) MT loss every this many steps, plotted beside the training loss.
DEMO_EVAL_EVERY ?= 50
DEMO_RUNS := full-mt full-mt-align-mt lora-mt lora-mt-align-mt
CURRICULUM_text := Text
CURRICULUM_mt := MT
CURRICULUM_mt-align-mt := MT+Align->MT
STEPS_mt := $(DEMO_STEPS)
STEPS_mt-align-mt := $(shell echo $$(( $(DEMO_STEPS) / 2 )))
BASE := $(D)/base/export/model
LAUNCH = OMP_NUM_THREADS=1 $(VENV)/bin/deepspeed --num_accelerators 2 --master_port $(DEMO_PORT) \
	training/train.py
CONTRACT := $(wildcard core/*.py data_prep/contract/*.py)
DATA_SRC := $(CONTRACT) $(wildcard data_prep/*.py) data_prep/recipes/freedict.yaml
TRAIN_SRC := $(CONTRACT) $(wildcard training/*.py) ds_configs/zero3_cpu.json
EVAL_SRC := $(CONTRACT) $(wildcard eval/*.py) eval/grids/freedict.yaml
# $(call fresh_run,RUN_DIR,COMMAND): run COMMAND in RUN_DIR; keep (resume) what is there
# only when the command and the contents of every prerequisite are the same as then.
define fresh_run
	@key=$$(echo '$(2)' | cat - $^ | sha256sum | cut -c1-16); \
	if [ "$$(cat $(1)/inputs.sha256 2>/dev/null)" != "$$key" ]; then \
		rm -rf $(1) && mkdir -p $(1) && echo $$key > $(1)/inputs.sha256; fi
	$(2)
endef

demo: $(STAMP) $(D)/report/report.md
	@echo "demo report: $(D)/report/report.md"

$(D)/corpus/train.de: data_prep/freedict.py
	rm -rf $(D)/corpus
	$(PY) -m data_prep freedict --out $(D)/corpus

$(D)/tokenizer/tokenizer.json: $(D)/corpus/train.de data_prep/tokenizer.py
	$(PY) -m data_prep tokenizer --out $(D)/tokenizer --vocab-size 4000 \
		$(D)/corpus/train.de $(D)/corpus/train.en

$(D)/shards-%/manifest.json: $(D)/tokenizer/tokenizer.json $(D)/corpus/train.de $(DATA_SRC)
	$(PY) -m data_prep build freedict corpus.path=$(D)/corpus/ tokenizer=$(D)/tokenizer \
		"curriculum=$(CURRICULUM_$*)" --out $(D)/shards-$* --overwrite

# The base: the tiny random BLOOM after a short causal-LM stage on the plain-text shards.
$(BASE)/model.safetensors: $(D)/shards-text/manifest.json training/configs/tiny-cpu-base.yaml \
		$(TRAIN_SRC)
	$(call fresh_run,$(D)/base,$(LAUNCH) --config training/configs/tiny-cpu-base.yaml \
		data=$(D)/shards-text run_dir=$(D)/base max_steps_per_stage=$(BASE_STEPS) eval_every=$(DEMO_EVAL_EVERY))

$(D)/full-%/export/model/model.safetensors: $(D)/shards-%/manifest.json $(BASE)/model.safetensors \
		training/configs/tiny-cpu.yaml $(TRAIN_SRC)
	$(call fresh_run,$(D)/full-$*,$(LAUNCH) --config training/configs/tiny-cpu.yaml \
		model.tiny=false model.name=$(BASE) data=$(D)/shards-$* run_dir=$(D)/full-$* \
		max_steps_per_stage=$(STEPS_$*) eval_every=$(DEMO_EVAL_EVERY))

$(D)/lora-%/export/adapter/adapter_config.json: $(D)/shards-%/manifest.json \
		$(BASE)/model.safetensors training/configs/tiny-cpu-lora.yaml $(TRAIN_SRC)
	$(call fresh_run,$(D)/lora-$*,$(LAUNCH) --config training/configs/tiny-cpu-lora.yaml \
		model.name=$(BASE) data=$(D)/shards-$* run_dir=$(D)/lora-$* \
		max_steps_per_stage=$(STEPS_$*) eval_every=$(DEMO_EVAL_EVERY))

# What each run is evaluated with: a full model folder, or the base plus a LoRA adapter.
MODEL_full = --model $(D)/full-$*/export/model
MODEL_lora = --model $(BASE) --adapter $(D)/lora-$*/export/adapter
EXPORT_full = $(D)/full-%/export/model/model.safetensors
EXPORT_lora = $(D)/lora-%/export/adapter/adapter_config.json
ALIGN_DATA := $(D)/shards-mt-align-mt
define eval_rules
$(D)/$(1)-%/eval/scores.json: $(EXPORT_$(1)) $(D)/corpus/train.de $(EVAL_SRC)
	rm -rf $$(@D)
	$(PY) -m eval run --grid freedict corpus.path=$(D)/corpus/ --max-new-tokens 64 \
		$$(MODEL_$(1)) --out $$(@D)

# After eval run (which starts from an empty eval/): align.json goes beside scores.json.
$(D)/$(1)-%/eval/align.json: $(D)/$(1)-%/eval/scores.json $(ALIGN_DATA)/manifest.json
	$(PY) -m eval align --data $(ALIGN_DATA) $$(MODEL_$(1)) --out $$(@D)
endef
$(foreach kind,full lora,$(eval $(call eval_rules,$(kind))))

# The sanity check that opens the report: a tiny model memorises SANITY_PAIRS short
# training pairs (train = dev = test) through the same commands, then translates them back.
# A chain whose decode prompt, labels or EOS do not fit training scores far below 100.
SANITY_PAIRS ?= 32
S := $(D)/sanity
MEMORISE := model.tiny_hidden=128 micro_batch_size=8 grad_accum=1 lr=3e-3 warmup_ratio=0.02 \
	weight_decay=0.0 epochs_per_stage=[80] save_every=100000
$(S)/corpus/train.de: $(D)/corpus/train.de
	rm -rf $(@D) && mkdir -p $(@D)
	paste $(D)/corpus/train.de $(D)/corpus/train.en | awk -F'\t' 'split($$1, w, " ") <= 7' \
		| head -n $(SANITY_PAIRS) > $(@D)/pairs.tsv
	for split in train dev test; do cut -f1 $(@D)/pairs.tsv > $(@D)/$$split.de; \
		cut -f2 $(@D)/pairs.tsv > $(@D)/$$split.en; done

$(S)/shards/manifest.json: $(S)/corpus/train.de $(D)/tokenizer/tokenizer.json $(DATA_SRC)
	$(PY) -m data_prep build freedict corpus.path=$(S)/corpus/ tokenizer=$(D)/tokenizer \
		curriculum=MT --out $(S)/shards --overwrite

$(S)/run/export/model/model.safetensors: $(S)/shards/manifest.json training/configs/tiny-cpu.yaml \
		$(TRAIN_SRC)
	$(call fresh_run,$(S)/run,$(LAUNCH) --config training/configs/tiny-cpu.yaml \
		data=$(S)/shards run_dir=$(S)/run $(MEMORISE))

$(S)/eval/scores.json: $(S)/run/export/model/model.safetensors $(EVAL_SRC)
	rm -rf $(@D)
	$(PY) -m eval run --grid freedict corpus.path=$(S)/corpus/ --model $(S)/run/export/model \
		--out $(@D)

$(D)/report/report.md: $(foreach r,$(DEMO_RUNS),$(D)/$(r)/eval/scores.json $(D)/$(r)/eval/align.json) \
		$(S)/eval/scores.json $(EVAL_SRC)
	$(PY) -m eval report $(addprefix $(D)/,$(DEMO_RUNS)) --baseline full-mt --out $(D)/report \
		--sanity $(S)/eval

.PRECIOUS: $(S)/run/export/model/model.safetensors $(D)/shards-%/manifest.json $(D)/full-%/export/model/model.safetensors \
	$(D)/lora-%/export/adapter/adapter_config.json $(D)/%/eval/scores.json $(D)/%/eval/align.json

# Everything (unit + integration: real 2-rank launches, Slurm, installs).
test: $(STAMP)
	$(PY) -m pytest -q tests

# The unit tier alone: in-process, no network, under a minute.
test-unit: $(STAMP)
	$(PY) -m pytest -q -m unit tests

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

# The linter and the formatter's check (ruff.toml), as CI runs them.
lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# Regenerate the generated blocks of docs/ (tables a command prints, e.g. the planner's
# matrix); tests/core/test_gendocs.py fails when they are stale.
docs: $(STAMP)
	$(PY) -m core.gendocs docs/*.md

clean:
	rm -rf $(VENV) runs .cache
