# dvc area (dvcfmt, `catdog data`): benchmark side by side with the real dvc from $(VENV).
APT_PKGS += bc

.PHONY: bench-dvc
bench-dvc: venv go.work ## benchmark catdog data vs real dvc (add, status, push, pull) and the md5 limit
	$(GO) build -o $(BIN)/catdog-data ./bench/dvc/catdog-data
	$(GO) build -o $(CATDOG) ./cmd/catdog
	CATDOG=$(BIN)/catdog-data CATDOG_FULL=$(CATDOG) DVC=$(VENV)/bin/dvc SHARED=$(SHARED) ./bench/dvc/bench.sh | tee bench/dvc/RESULTS.md
