# lifecycle: after the pipeline (`catdog repro`: prepare -> train, tracked, registered and
# gated -> evaluate), `make run` ships and checks the registered champion:
#   - builds its serving image into an OCI layout ($(IMAGE_LAYOUT)),
#   - serves models:/catdog@champion on 127.0.0.1:$(SERVE_PORT) (left running, like the MLflow
#     server; `make serve-down` stops it),
#   - sends it the test split over HTTP and fails unless the served accuracy equals the
#     evaluated one,
#   - prints the summary: MLflow run and champion, dvc status, image digest, service, accuracy.
SERVE_PORT   ?= 8080
SERVE_DIR    ?= $(CURDIR)/.serve
IMAGE_LAYOUT ?= $(CACHE)/champion-image
CHAMPION_DIR ?= $(SERVE_DIR)/champion
REGISTERED   ?= catdog

.PHONY: lifecycle
lifecycle: ## image, local service and served-vs-evaluated accuracy of models:/catdog@champion, then the summary
	@set -euo pipefail; mkdir -p $(SERVE_DIR); \
	export MLFLOW_TRACKING_URI="$${MLFLOW_TRACKING_URI:-$$(cat $(MLFLOW_DIR)/uri)}"; \
	rm -rf $(CHAMPION_DIR); \
	$(CATDOG) model pull models:/$(REGISTERED)@champion --out $(CHAMPION_DIR) 2>$(SERVE_DIR)/pull.log | tee $(SERVE_DIR)/pull.txt; \
	grep -E '^(verified|warning)' $(SERVE_DIR)/pull.log || true; \
	$(CATDOG) image build --model $(CHAMPION_DIR) --oci-layout $(IMAGE_LAYOUT) -q > $(SERVE_DIR)/image.txt; \
	digest=$$(awk '/^digest: /{print $$2}' $(SERVE_DIR)/image.txt); \
	if [ -f $(SERVE_DIR)/serve.pid ] && kill -0 $$(cat $(SERVE_DIR)/serve.pid) 2>/dev/null; then \
	  kill -TERM -- -$$(cat $(SERVE_DIR)/serve.pid) 2>/dev/null || kill -TERM $$(cat $(SERVE_DIR)/serve.pid); \
	  for i in $$(seq 1 100); do kill -0 $$(cat $(SERVE_DIR)/serve.pid) 2>/dev/null || break; sleep 0.1; done; \
	fi; \
	setsid nohup $(CATDOG) serve --model models:/$(REGISTERED)@champion --addr 127.0.0.1:$(SERVE_PORT) --drain-delay 0s \
	  >$(SERVE_DIR)/serve.log 2>&1 </dev/null & echo $$! > $(SERVE_DIR)/serve.pid; \
	for i in $$(seq 1 300); do \
	  curl -fsS -o /dev/null http://127.0.0.1:$(SERVE_PORT)/ready 2>/dev/null && break; \
	  kill -0 $$(cat $(SERVE_DIR)/serve.pid) 2>/dev/null || { echo "serve exited:"; tail -20 $(SERVE_DIR)/serve.log; exit 1; }; \
	  sleep 0.2; \
	done; \
	$(CATDOG) evaluate --model $(CHAMPION_DIR) --data $(PREPARED) --split test --json - > $(SERVE_DIR)/evaluated.json; \
	$(CATDOG) evaluate --server http://127.0.0.1:$(SERVE_PORT) --data $(PREPARED) --split test --json - > $(SERVE_DIR)/served.json; \
	evaluated=$$(jq -r .accuracy $(SERVE_DIR)/evaluated.json); served=$$(jq -r .accuracy $(SERVE_DIR)/served.json); \
	n=$$(jq -r .n $(SERVE_DIR)/served.json); \
	if [ "$$evaluated" != "$$served" ]; then echo "served accuracy $$served != evaluated accuracy $$evaluated"; exit 1; fi; \
	version=$$(sed -n 's/^pulled [^ ]* version \([0-9]*\) .*/\1/p' $(SERVE_DIR)/pull.txt); \
	echo; echo "==================== catdog: summary ===================="; \
	$(CATDOG) mlflow links || true; \
	echo "MLflow champion:   $(REGISTERED) version $$version (models:/$(REGISTERED)@champion): $${MLFLOW_TRACKING_URI%/}/#/models/$(REGISTERED)/versions/$$version"; \
	echo "dvc status:        $$($(VENV)/bin/dvc status 2>&1 | tr '\n' ' ')"; \
	echo "image:             $(IMAGE_LAYOUT) (OCI layout) digest $$digest, labelled io.catdog.model.version=$$version"; \
	echo "service:           http://127.0.0.1:$(SERVE_PORT) (metrics: http://127.0.0.1:$(SERVE_PORT)/metrics; stop: make serve-down)"; \
	echo "accuracy:          $$served served over HTTP = $$evaluated evaluated ($$n test photos)"

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
