# mlflow area: a local MLflow tracking server for `make run`, and the logging benchmark.
#
# `make mlflow-up` makes sure a tracking server is reachable and writes its URI to
# .mlflow/uri (ignored folder):
#   - MLFLOW_TRACKING_URI set  -> that server is used as is (nothing is started);
#   - otherwise                -> `mlflow server` from $(VENV) on 127.0.0.1:$(MLFLOW_PORT) with a
#     SQLite store (.mlflow/mlflow.db) and artifacts served by the server (.mlflow/artifacts).
#     Idempotent: a server already answering /health on that port is reused.
# `make run` then trains with: MLFLOW_TRACKING_URI=$$(cat .mlflow/uri) $(CATDOG) train ...
# `make mlflow-down` stops the server started by mlflow-up (by its recorded pid only).
MLFLOW_DIR  ?= $(CURDIR)/.mlflow
MLFLOW_PORT ?= 5000
MLFLOW_HEALTH = $(VENV)/bin/python -c 'import sys,urllib.request; sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).read().strip()==b"OK" else 1)'

.PHONY: mlflow-up
mlflow-up: venv ## start (or reuse) the local MLflow server; its URI goes to .mlflow/uri
	@mkdir -p $(MLFLOW_DIR)
	@if [ -n "$${MLFLOW_TRACKING_URI:-}" ]; then \
	  echo "$$MLFLOW_TRACKING_URI" > $(MLFLOW_DIR)/uri; \
	  echo "mlflow: using MLFLOW_TRACKING_URI (not starting a local server)"; exit 0; \
	fi; \
	uri=http://127.0.0.1:$(MLFLOW_PORT); \
	if $(MLFLOW_HEALTH) $$uri/health 2>/dev/null; then \
	  echo "$$uri" > $(MLFLOW_DIR)/uri; echo "mlflow: server already running — UI at $$uri"; exit 0; \
	fi; \
	echo "mlflow: starting mlflow server on $$uri (store $(MLFLOW_DIR)/mlflow.db, log $(MLFLOW_DIR)/server.log)"; \
	MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true setsid nohup $(VENV)/bin/mlflow server \
	  --backend-store-uri sqlite:///$(MLFLOW_DIR)/mlflow.db \
	  --artifacts-destination $(MLFLOW_DIR)/artifacts --serve-artifacts \
	  --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 >$(MLFLOW_DIR)/server.log 2>&1 </dev/null & \
	echo $$! > $(MLFLOW_DIR)/server.pid; \
	for i in $$(seq 1 240); do \
	  if $(MLFLOW_HEALTH) $$uri/health 2>/dev/null; then \
	    echo "$$uri" > $(MLFLOW_DIR)/uri; echo "mlflow: UI at $$uri"; exit 0; fi; \
	  if ! kill -0 $$(cat $(MLFLOW_DIR)/server.pid) 2>/dev/null; then \
	    echo "mlflow: server exited (port $(MLFLOW_PORT) busy? set MLFLOW_PORT):"; tail -20 $(MLFLOW_DIR)/server.log; exit 1; fi; \
	  sleep 0.5; \
	done; echo "mlflow: server did not answer $$uri/health within 2 minutes"; exit 1

.PHONY: mlflow-down
mlflow-down: ## stop the MLflow server started by mlflow-up
	@if [ -f $(MLFLOW_DIR)/server.pid ] && kill -0 $$(cat $(MLFLOW_DIR)/server.pid) 2>/dev/null; then \
	  kill -TERM -- -$$(cat $(MLFLOW_DIR)/server.pid) 2>/dev/null || kill -TERM $$(cat $(MLFLOW_DIR)/server.pid); \
	  rm -f $(MLFLOW_DIR)/server.pid $(MLFLOW_DIR)/uri; echo "mlflow: stopped"; \
	else echo "mlflow: no server started by mlflow-up is running"; fi

.PHONY: bench-mlflow
bench-mlflow: venv ## 100 epochs x 8 metrics + 20 params: catdog client vs Python log_metric / log_batch -> bench/mlflow/RESULTS.md
	VENV=$(VENV) GO=$(GO) bench/mlflow/run.sh

.PHONY: mlflow-screenshot
mlflow-screenshot: venv ## headless-Chromium screenshot of the latest training run (metrics + confusion matrix) -> docs/mlflow-ui.png
	@$(call apt_ensure,chromium)
	$(VENV)/bin/python scripts/mlflow-screenshot.py --out docs/mlflow-ui.png
