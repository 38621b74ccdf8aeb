# catdog — two commands on a fresh machine: `make run` (the main job) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
VENV      ?= $(CURDIR)/.venv
PY        ?= python3
CACHE     ?= $(or $(CATDOG_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/catdog)
BIN       := $(CURDIR)/bin
CATDOG    := $(BIN)/catdog
CATDOG_TORCH := $(BIN)/catdog-torch
SHARED    ?= $(abspath $(CURDIR)/../shared/data)
GOBIN_DIR := $(CACHE)/gobin
STATICCHECK_VERSION := v0.8.2
export CATDOG_CACHE := $(CACHE)
export CATDOG_VENV  := $(VENV)
export CATDOG_SHARED_DATA := $(SHARED)
export PATH := $(GOBIN_DIR):$(PATH)

# Per-area additions live in mk/*.mk (one file per area, so parallel work does not collide).
# They may append to APT_PKGS, DEPS_EXTRA (prerequisites of `deps`) and define their own targets.
APT_PKGS   := prometheus docker-registry skopeo
DEPS_EXTRA :=
include $(sort $(wildcard mk/*.mk))

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-16s %s\n", $$1, $$2}'

## ---- set-up ---------------------------------------------------------------

# apt_ensure installs the Debian packages given as $(1) that are missing (as root, like CI).
apt_ensure = missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Build dependencies of every Go build: libturbojpeg0-dev (header and static library of
# libjpeg-turbo, linked into catdog; nothing is needed at run time).
BUILD_APT_PKGS := libturbojpeg0-dev

.PHONY: build-deps
build-deps: ## Debian packages the Go build needs (libturbojpeg0-dev)
	@$(call apt_ensure,$(BUILD_APT_PKGS))

go.work: scripts/setup-libtorch.sh | build-deps
	./scripts/setup-libtorch.sh >/dev/null

.PHONY: libtorch
libtorch: go.work ## download torch 2.1.2 (CPU libs only) and write the gotch CPU go.work

$(VENV)/.installed: requirements/test.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --progress-bar off -q -r requirements/test.txt
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## project virtualenv with the pinned real peers (mlflow, dvc, moto)

BENCH_VENV ?= $(CURDIR)/.venv-bench
$(BENCH_VENV)/.installed: requirements/bench.txt
	$(PY) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --progress-bar off -q -r requirements/bench.txt
	touch $@

.PHONY: bench-venv
bench-venv: $(BENCH_VENV)/.installed ## virtualenv with PyTorch 2.1.2, torchvision, Pillow, FastAPI (benchmarks only)

.PHONY: system-deps
system-deps: build-deps ## Debian packages for real peers (prometheus, registry, skopeo)
	@$(call apt_ensure,$(APT_PKGS))

$(GOBIN_DIR)/staticcheck:
	GOBIN=$(GOBIN_DIR) GOWORK=off $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

.PHONY: tools
tools: $(GOBIN_DIR)/staticcheck ## Go tools used by tests and lint

.PHONY: deps
deps: libtorch venv system-deps tools $(DEPS_EXTRA) ## everything make test needs

## ---- build -----------------------------------------------------------------

# Two builds of cmd/catdog: bin/catdog-torch (every command, linked with libtorch) and
# bin/catdog (-tags catdog_light: no libtorch, so data/mlflow/image/gha commands start in
# milliseconds; train, evaluate, predict and serve execute bin/catdog-torch next to it).
.PHONY: build
build: go.work ## build bin/catdog (light) and bin/catdog-torch (libtorch)
	$(GO) build -o $(CATDOG_TORCH) ./cmd/catdog
	$(GO) build -tags catdog_light -o $(CATDOG) ./cmd/catdog

## ---- main job ------------------------------------------------------------------

PREPARED  ?= data/prepared
MODEL_DIR ?= models
PARAMS    ?= params.yaml
# the prepared image size must equal the network's input size
INPUT_SIZE = $(shell awk '/^input_size:/{print $$2}' $(PARAMS))

# The main job versions the photos with DVC in a workspace outside the repository (the shared
# data is never copied into the repo) and pushes them to a local DVC remote.
PIPELINE_DIR ?= $(CACHE)/pipeline
DVC_REMOTE   ?= $(CACHE)/dvc-remote

.PHONY: data-version
data-version: build ## version the photos with `catdog data` (DVC 3) and push them to a local DVC remote
	mkdir -p $(PIPELINE_DIR) $(DVC_REMOTE)
	[ -d $(PIPELINE_DIR)/.dvc ] || $(CATDOG) data init -C $(PIPELINE_DIR) --no-scm
	$(CATDOG) data remote add -C $(PIPELINE_DIR) -d -f local $(DVC_REMOTE) >/dev/null
	cp -a --update $(SHARED)/petimages-dev/. $(PIPELINE_DIR)/petimages/
	$(CATDOG) data add -C $(PIPELINE_DIR) petimages
	$(CATDOG) data push -C $(PIPELINE_DIR)
	$(CATDOG) data status -c -C $(PIPELINE_DIR)

.PHONY: run
run: build venv data-version ## the main job: version data -> pipeline (prepare -> train, tracked + gated -> evaluate) -> champion image, service, check
	@start=$$(date +%s); mkdir -p $(SERVE_DIR); \
	if [ -z "$${MLFLOW_TRACKING_URI:-}" ]; then $(MAKE) --no-print-directory mlflow-up; fi; \
	echo "pipeline: catdog repro (dvc.yaml; dvc.lock as dvc writes it)"; \
	MLFLOW_TRACKING_URI="$${MLFLOW_TRACKING_URI:-$$(cat $(MLFLOW_DIR)/uri)}" CATDOG_DVC_FILE=$(PIPELINE_DIR)/petimages.dvc \
	  PATH="$(BIN):$$PATH" $(CATDOG) repro | tee $(SERVE_DIR)/repro.txt; \
	$(MAKE) --no-print-directory lifecycle; \
	echo "pipeline:          $$(tail -1 $(SERVE_DIR)/repro.txt)"; \
	echo "make run:          $$(( $$(date +%s) - start )) s"

## ---- quality -------------------------------------------------------------------

.PHONY: lint
lint: go.work tools ## gofmt, go vet, staticcheck
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags catdog_light ./cmd/catdog
	staticcheck ./...
	staticcheck -tags catdog_light ./cmd/catdog

.PHONY: test
test: deps lint ## install what is needed, then run every test against the real peers
	$(GO) test -count=1 -timeout 25m ./...
	$(MAKE) --no-print-directory test-asan

# test-asan runs the fuzz targets' seeds only: FuzzDecode (both decode paths) and
# FuzzDecodeResizedDirtyDecoder (a decoder reused after another, possibly broken, input).
.PHONY: test-asan
test-asan: go.work ## the JPEG C code (libjpeg-turbo, resize.c) under AddressSanitizer
	$(GO) test -count=1 -asan ./imageprep/internal/turbojpeg/
	$(GO) test -count=1 -asan -run 'Fuzz|DecodeResized' ./imageprep/
