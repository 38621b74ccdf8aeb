# dvc area (dvcfmt, `catdog data`): benchmark side by side with the real dvc from $(VENV).
.PHONY: bench-dvc
bench-dvc: venv ## benchmark catdog data vs real dvc (add, status, push, pull) and the md5 limit
	$(GO) build -o $(CATDOG) ./cmd/catdog
	CATDOG=$(CATDOG) DVC=$(VENV)/bin/dvc SHARED=$(SHARED) ./bench/dvc/bench.sh | tee bench/dvc/RESULTS.md
APT_PKGS += bc
