# imageprep / catdog prepare: side-by-side preprocessing benchmark (catdog vs Pillow + torchvision).
.PHONY: bench-prep
bench-prep: ## preprocessing images/s: catdog vs Pillow + torchvision, median of 5 runs (bench/prep/RESULTS.md)
	$(MAKE) --no-print-directory bench-venv
	DATA=$(SHARED)/petimages-dev BENCH_VENV=$(BENCH_VENV) GO=$(GO) bench/prep/run.sh
