# artseg-mm: every target runs inside .venv (created on first use).
PYTHON_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# DEMO=1 runs the targets on the embedded demo data (configs/demo/)
# FULL=1 runs them on the 16 classes (configs/*_artefact_full.py, *_demo_full.py)
DEMO ?=
FULL ?=
ifeq ($(DEMO),1)
CFG_DIR := configs/demo
SUFFIX := _demo
DATA_ROOT := data/artefact_demo
else
CFG_DIR := configs
SUFFIX := _artefact
DATA_ROOT := data/artefact
endif
ifeq ($(FULL),1)
SUFFIX := $(SUFFIX)_full
endif
# TRAIN_OPTS: --cfg-options for every training, e.g. a CPU-sized check of the
# targets: TRAIN_OPTS="train_cfg.max_epochs=1"
TRAIN_OPTS ?=
TRAIN_ARGS := $(if $(TRAIN_OPTS),--cfg-options $(TRAIN_OPTS))
# the study's models: one config per encoder, configs/<model>_artefact.py
MODELS := $(patsubst configs/%_artefact.py,%,$(sort $(wildcard configs/*_artefact.py)))
# short name (train-convnext, FOLD_MODELS=swin, ...): the model's first word
short = $(firstword $(subst _, ,$(1)))
SHORT := $(foreach m,$(MODELS),$(call short,$(m)))
WORK := work_dirs
DEMO_DATA := data/artefact_demo
OUT := $(WORK)/analysis$(SUFFIX)
# the best-mIoU checkpoint of a work dir (else the last one); fails clearly if none
ckpt = $$($(PY) tools/misc/find_checkpoint.py $(WORK)/$(1))

.PHONY: venv demo demo-all demo-data test train-convnext train-swin train-coat \
	train-resnet50 train-all evaluate-convnext evaluate-swin evaluate-coat \
	evaluate-resnet50 evaluate-all compare study folds visualize-attention cam benchmark \
	bench-test e2e-test clean

venv: $(STAMP)
$(STAMP): setup.py requirements/runtime.txt requirements/tests.txt requirements/tensorboard.txt
	$(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements/runtime.txt -r requirements/tests.txt \
		-r requirements/tensorboard.txt
	$(PY) -m pip install --no-deps -e .
	touch $(STAMP)

## the main job on the embedded demo data: data, a short CPU training, test with overlays
demo: venv demo-data
	$(PY) tools/train.py configs/demo/convnext_tiny_upernet_demo.py
	$(PY) tools/test.py configs/demo/convnext_tiny_upernet_demo.py \
		$(call ckpt,convnext_tiny_upernet_demo) \
		--show-dir $(WORK)/convnext_tiny_upernet_demo/show \
		--work-dir $(WORK)/convnext_tiny_upernet_demo/test \
		--out $(WORK)/convnext_tiny_upernet_demo/test/masks
	@echo "overlays: $(WORK)/convnext_tiny_upernet_demo/show/"

## all four models on the demo data, then the comparison, CAMs and attention maps
demo-all: venv demo-data
	$(MAKE) train-all evaluate-all compare cam visualize-attention DEMO=1

demo-data: venv
	@test -f $(DEMO_DATA)/class_weights.json || $(PY) tools/misc/make_demo_data.py --out $(DEMO_DATA)

## the test suite (CPU, tiny inputs), in TEST_WORKERS processes (pytest-xdist; one
## worker per test file, so a file's shared fixtures are built once)
TEST_WORKERS ?= 2
test: venv
	$(PY) -m pytest tests -q -n $(TEST_WORKERS) --dist loadfile -m "not bench and not e2e" --durations=15

## the long end-to-end runs (marker e2e: a killed training or collection resumed; minutes),
## left out of test; .ci/run runs them after it
e2e-test: venv
	$(PY) -m pytest tests -q -n $(TEST_WORKERS) -m e2e

## the tests of the benchmarks in benchmarks/ (marker bench; minutes on CPU), left out of test
bench-test: venv
	$(PY) -m pytest tests -q -m bench

# short name -> model (config stem)
$(foreach m,$(MODELS),$(eval $(call short,$(m)) := $(m)))

define MODEL_TARGETS
train-$(1): venv
	$$(PY) tools/train.py $$(CFG_DIR)/$$($(1))$$(SUFFIX).py $$(TRAIN_ARGS)
evaluate-$(1): venv
	$$(PY) tools/test.py $$(CFG_DIR)/$$($(1))$$(SUFFIX).py $$(call ckpt,$$($(1))$$(SUFFIX)) \
		--work-dir $$(WORK)/$$($(1))$$(SUFFIX)/test --out $$(WORK)/$$($(1))$$(SUFFIX)/test/masks \
		--show-dir $$(WORK)/$$($(1))$$(SUFFIX)/show
endef
$(foreach m,$(SHORT),$(eval $(call MODEL_TARGETS,$(m))))

train-all: $(addprefix train-,$(SHORT))
evaluate-all: $(addprefix evaluate-,$(SHORT))

## table + bar chart + prediction grids with bootstrap CIs over all trained models
compare: venv
	$(PY) tools/analysis_tools/compare.py $(foreach m,$(MODELS),$(wildcard $(WORK)/$(m)$(SUFFIX))) \
		--out $(OUT)/compare

## the study with training seeds as a level: each model of MODELS (STUDY_MODELS, short
## names, to choose) trained and tested once per seed of SEEDS into
## $(STUDY_DIR)/runs/<model>_seed<N>, then compare.py over all runs (seeds pooled per
## model; intervals and tests include the spread between seeds). A run whose test results
## exist is kept, not retrained: delete its folder to redo it.
SEEDS ?= 0 1 2
STUDY_MODELS ?= $(SHORT)
STUDY_DIR := $(WORK)/study$(SUFFIX)
study: venv $(if $(DEMO),demo-data)
	@for m in $(foreach m,$(STUDY_MODELS),$($(m))$(SUFFIX)); do for seed in $(SEEDS); do \
		run=$(STUDY_DIR)/runs/$${m}_seed$$seed; \
		if [ -f $$run/test/per_image.json ]; then echo "== $$m, seed $$seed: kept ($$run)"; continue; fi; \
		echo "== $$m, seed $$seed -> $$run"; \
		$(PY) tools/train.py $(CFG_DIR)/$$m.py --work-dir $$run \
			--cfg-options randomness.seed=$$seed $(TRAIN_OPTS) || exit 1; \
		$(PY) tools/test.py $$run/$$m.py $$($(PY) tools/misc/find_checkpoint.py $$run) \
			--work-dir $$run/test --out $$run/test/masks || exit 1; \
	done; done
	$(PY) tools/analysis_tools/compare.py --out $(STUDY_DIR)/compare \
		$(foreach m,$(STUDY_MODELS),$(foreach s,$(SEEDS),$(STUDY_DIR)/runs/$($(m))$(SUFFIX)_seed$(s)))

## leave-one-group-out: folds of the data's metadata (HOLDOUT=material or content); per
## fold each of FOLD_MODELS (short names) is trained and tested, then compare --folds
HOLDOUT ?= material
FOLD_MODELS ?= convnext
FOLD_DIR := $(WORK)/folds_$(HOLDOUT)$(SUFFIX)
# the dataloaders of fold $$fold: its split files, read from img_dir/ and ann_dir/
fold_data = $(foreach s,train val test,$(s)_dataloader.dataset.ann_file=$(abspath \
	$(FOLD_DIR))/splits/$$fold/$(s).txt $(s)_dataloader.dataset.data_prefix.img_path=img_dir \
	$(s)_dataloader.dataset.data_prefix.seg_map_path=ann_dir)
folds: venv $(if $(DEMO),demo-data)
	$(PY) tools/misc/make_folds.py $(DATA_ROOT) --holdout $(HOLDOUT) --out $(FOLD_DIR)/splits
	@for split in $(FOLD_DIR)/splits/*/; do fold=$$(basename $$split); \
		for m in $(foreach m,$(FOLD_MODELS),$($(m))$(SUFFIX)); do \
			run=$(FOLD_DIR)/runs/$$m/$$fold; \
			echo "== $$m, fold $$fold -> $$run"; \
			$(PY) tools/train.py $(CFG_DIR)/$$m.py --work-dir $$run \
				--cfg-options $(fold_data) $(TRAIN_OPTS) || exit 1; \
			$(PY) tools/test.py $$run/$$m.py $$($(PY) tools/misc/find_checkpoint.py $$run) \
				--work-dir $$run/test --out $$run/test/masks || exit 1; \
		done; \
	done
	$(PY) tools/analysis_tools/compare.py --folds --out $(FOLD_DIR)/compare \
		$(foreach m,$(FOLD_MODELS),$(FOLD_DIR)/runs/$($(m))$(SUFFIX)/$(HOLDOUT)_*)

## Grad-CAM overlays for each model on one validation image
cam: venv
	@for m in $(MODELS); do \
		ck=$$($(PY) tools/misc/find_checkpoint.py $(WORK)/$${m}$(SUFFIX)) || exit 1; \
		$(PY) tools/analysis_tools/visualization_cam.py $(CFG_DIR)/$${m}$(SUFFIX).py $$ck \
			$$(ls $(DATA_ROOT)/img_dir/val/*.png | head -1) --out $(OUT)/cam/$${m} || exit 1; \
	done

## Swin and CoaT attention maps
visualize-attention: venv
	@for m in swin_tiny_upernet coat_lite_small_upernet; do \
		ck=$$($(PY) tools/misc/find_checkpoint.py $(WORK)/$${m}$(SUFFIX)) || exit 1; \
		$(PY) tools/analysis_tools/visualize_attention.py $(CFG_DIR)/$${m}$(SUFFIX).py $$ck \
			$$(ls $(DATA_ROOT)/img_dir/val/*.png | head -1) --out $(OUT)/attention/$${m} || exit 1; \
	done

## speed/memory against segmentation-models-pytorch and mmseg's stock UPerNet
benchmark: venv
	$(PY) -m benchmarks.peers --out $(WORK)/benchmark.md

clean:
	rm -rf $(WORK)/*/ .pytest_cache
	find . -name __pycache__ -path './artseg_mm/*' -prune -exec rm -rf {} +
