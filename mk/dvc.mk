# dvc area (dvcfmt, `catdog data`): benchmark side by side with the real dvc from $(VENV).
APT_PKGS += bc

.PHONY: bench-dvc
bench-dvc: venv build ## benchmark catdog data vs real dvc (add, status, push, pull) and the md5 limit
	CATDOG=$(CATDOG) DVC=$(VENV)/bin/dvc SHARED=$(SHARED) ./bench/dvc/bench.sh > bench/dvc/RESULTS.new.md
	mv bench/dvc/RESULTS.new.md bench/dvc/RESULTS.md
