# quality area: the honest measurement of a trained model (bench/quality) — its own test split
# and a shifted copy of that split (Go's JPEG encoder at other qualities, 180/100 px squashed
# copies, 70 % crops, half and 1.5x sizes), built from the test split only, so it is as unseen
# as the split. `make quality` after `make run` scores models/ on both; RUN_ID=<mlflow run id>
# also logs shifted_accuracy (and one figure per shift) to that run.
SHIFTED ?= data/shifted
RUN_ID  ?=

.PHONY: quality
quality: go.work ## own-test and shifted-test accuracy of $(MODEL_DIR) (bench/quality/RESULTS.md)
	PREPARED=$(PREPARED) SHIFTED=$(SHIFTED) GO=$(GO) bench/quality/run.sh $(MODEL_DIR) $(RUN_ID)
