# lifecycle: after the pipeline (`catdog repro`: prepare -> train, tracked, registered and
# gated -> evaluate), `make run` ships and checks the registered champion with
# scripts/ship-and-check.sh:
#   - pulls it (SHA256SUMS verified) and builds its serving image into an OCI layout
#     ($(IMAGE_LAYOUT); from the layer cache when nothing changed),
#   - serves models:/catdog@champion on 127.0.0.1:$(SERVE_PORT) (left running, like the MLflow
#     server; `make serve-down` stops it),
#   - sends it the test split over HTTP and fails unless the served accuracy equals the
#     evaluated one; when the champion, its files, the image, the test split and the running
#     service are those of the last passed check, that check is reused instead (the summary
#     says which),
#   - prints the summary: MLflow run and champion, dvc status, image digest, service, accuracy.
SERVE_PORT   ?= 8080
SERVE_DIR    ?= $(CURDIR)/.serve
IMAGE_LAYOUT ?= $(CACHE)/champion-image
CHAMPION_DIR ?= $(SERVE_DIR)/champion
REGISTERED   ?= catdog

.PHONY: lifecycle
lifecycle: ## image, local service and served-vs-evaluated accuracy of models:/catdog@champion (reused when nothing changed), then the summary
	@MLFLOW_TRACKING_URI="$${MLFLOW_TRACKING_URI:-$$(cat $(MLFLOW_DIR)/uri)}" CATDOG=$(CATDOG) REGISTERED=$(REGISTERED) \
	  SERVE_DIR=$(SERVE_DIR) CHAMPION_DIR=$(CHAMPION_DIR) IMAGE_LAYOUT=$(IMAGE_LAYOUT) PREPARED=$(PREPARED) \
	  SERVE_PORT=$(SERVE_PORT) VENV=$(VENV) scripts/ship-and-check.sh

.PHONY: serve-down
serve-down: ## stop the champion service started by make run
	@if [ -f $(SERVE_DIR)/serve.pid ] && kill -0 $$(cat $(SERVE_DIR)/serve.pid) 2>/dev/null; then \
	  kill -TERM -- -$$(cat $(SERVE_DIR)/serve.pid) 2>/dev/null || kill -TERM $$(cat $(SERVE_DIR)/serve.pid); \
	  rm -f $(SERVE_DIR)/serve.pid; echo "serve: stopped"; \
	else echo "serve: not running"; fi

# A small model for CI jobs without a tracking server (a fork's pull request): 200 photos,
# 64 px, 3 epochs, written to $(MODEL_DIR) for `catdog image build`.
SMALL_DIR ?= $(CACHE)/model-small
.PHONY: model-small
model-small: build ## train a small untracked model into models/ (CI fallback when no MLflow server is configured)
	rm -rf $(SMALL_DIR) && mkdir -p $(SMALL_DIR)/photos/Cat $(SMALL_DIR)/photos/Dog
	for i in $$(seq 0 99); do \
	  ln -s $(SHARED)/petimages-dev/Cat/cat.$$i.jpg $(SMALL_DIR)/photos/Cat/; \
	  ln -s $(SHARED)/petimages-dev/Dog/dog.$$i.jpg $(SMALL_DIR)/photos/Dog/; done
	$(CATDOG) prepare --data $(SMALL_DIR)/photos --out $(SMALL_DIR)/prepared --size 64 -q
	MLFLOW_TRACKING_URI= $(CATDOG) train --params $(PARAMS) --data $(SMALL_DIR)/prepared --out $(MODEL_DIR) --epochs 3 --input-size 64 --name catdog-small -q
