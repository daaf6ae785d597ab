# Two commands on a fresh machine:  make demo   and   make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# LFW: this project's shared copy when present, else scikit-learn downloads it (needs internet).
SHARED_LFW := $(abspath ../shared/data)
export SCIKIT_LEARN_DATA ?= $(if $(wildcard $(SHARED_LFW)/lfw_home),$(SHARED_LFW),)

.PHONY: setup setup-core demo test test-fast test-integration lint docs browser constraints clean

# pyproject.toml is the one dependency list (the core and each extra); constraints.txt, derived from
# it (make constraints), pins every version for reproducible installs.
# setup-core: the core install only (ONNX Runtime, OpenCV, NumPy; no torch), what the demo needs.
$(VENV)/.core: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e .
	touch $@

# setup: everything (every extra and the test tools), what make test needs.
$(VENV)/.all: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[all,test,docs]'
	touch $@ $(VENV)/.core

setup-core: $(VENV)/.core
setup: $(VENV)/.all

constraints: setup
	$(BIN)/python scripts/constraints.py

# Prepare LFW (62 people with >= 20 images, 10 held out), train with the offline CASIA FaceNet,
# identify the held-out images with MTCNN alignment, print the top-5 evidence and the accuracy.
demo: setup-core
	$(BIN)/facerec prepare-lfw --out data/lfw_subset.npz --min-faces 20 --holdout 10 --holdout-dir infer_images
	$(BIN)/python src/train.py --data data/lfw_subset.npz --out_dir models --art_dir artifacts \
		--batch_size 64 --k 3 --align resize --embedder facenet-casia
	$(BIN)/python src/infer.py --input infer_images --model models/knn_facenet-casia_lfw_subset.npz \
		--art_dir artifacts --align mtcnn --topk 5

# Every test: unit, integration (real models) and slow (LFW protocols, the service, the page in
# Chromium, the load check); about 20 minutes on 2 cores. Installs Chromium for the page test when it can.
test: setup browser
	$(BIN)/python -m pytest tests -rfEs --durations=15

# Unit tests only: the fake detector and embedder, no model weights (under a minute).
test-fast: setup
	$(BIN)/python -m pytest tests -m "not slow and not integration" -q

# Real models on real LFW images, without the slow protocol, service and browser tests.
test-integration: setup
	$(BIN)/python -m pytest tests -m "integration and not slow" -rfEs

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The documentation site (mkdocs.yml, docs/) into site/; warnings are errors.
docs: setup
	$(BIN)/mkdocs build --strict

browser:
	@if [ "$$FACEREC_SKIP_BROWSER" != 1 ]; then bash scripts/ensure-browser.sh; fi

clean:
	rm -rf $(VENV) .pytest_cache artifacts/cache
