# unlearnkit: every target runs inside .venv, which `setup` creates when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run

BENCH  ?= digits
METHOD ?=
METHODS ?= bad_teacher,unsir,retrain_head_tuned
COMPARE ?= bad_teacher,unsir,retrain_head_tuned,ssd,temperature_only
ARGS   ?=
WORKERS ?= 2

.PHONY: setup setup-run setup-ray test test-fast local-eval compare lint readme notebook kaggle-local submit clean-cache

## setup: create .venv with everything (requirements-dev.txt: adds timm, optuna, the notebook, Kaggle and test tools) and install the package (near-instant when done)
setup: $(STAMP)

$(STAMP): requirements-dev.txt $(RUN_STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

## setup-run: create .venv with what local-eval needs alone (requirements.txt) and install the package (no bytecode compiled ahead: Python compiles what it imports)
setup-run: $(RUN_STAMP)

$(RUN_STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --no-compile -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $(RUN_STAMP)

## setup-ray: also install the Ray extra (--executor ray; its tests skip without it)
setup-ray: $(VENV)/.installed-ray

$(VENV)/.installed-ray: $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[ray]"
	@touch $@

## test: the whole test suite (CIFAR-10 tests run when UNLEARNKIT_DATA points at CIFAR-10)
test: setup
	$(PY) -m pytest -q

## test-fast: skip the end-to-end tests marked slow
test-fast: setup
	$(PY) -m pytest -q -m "not slow"

## local-eval: score METHODS on BENCH with the competition metric, oracles included (default: the seed methods that serve digits' random forgetting, bad_teacher and unsir, beside the best method, retrain_head_tuned; Linear Filtration serves class removal: make local-eval BENCH=digits-class METHODS=linear_filtration)
local-eval: setup-run
	$(VENV)/bin/unlearnkit local-eval --bench $(BENCH) --method $(METHODS) --workers $(WORKERS) $(ARGS)

## compare: local-eval's methods plus ssd and the temperature_only control, side by side
compare: setup-run
	$(VENV)/bin/unlearnkit local-eval --bench $(BENCH) --method $(COMPARE) --workers $(WORKERS) $(ARGS)

## lint: ruff over the package, scripts and tests
lint: setup
	$(VENV)/bin/ruff check src scripts tests notebooks

## readme: rewrite README.md's method table from the method registry
readme: setup
	$(VENV)/bin/unlearnkit list --markdown --into README.md

## notebook: build notebooks/submission.ipynb from notebooks/submission.py and the package
notebook: setup
	$(VENV)/bin/unlearnkit build-notebook $(ARGS)

## kaggle-local: mock competition data, the notebook run headless, the score
kaggle-local: setup
	$(VENV)/bin/unlearnkit kaggle-local $(ARGS)

## submit: push the notebook to Kaggle, wait for it, submit its submission.zip (the notebook's METHOD unless METHOD=... is given)
submit: setup
	$(VENV)/bin/unlearnkit submit $(if $(METHOD),--method $(METHOD)) $(ARGS)

## clean-cache: remove cached logits and models under data/cache
clean-cache:
	rm -rf data/cache
