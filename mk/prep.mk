# imageprep / catdog prepare: side-by-side preprocessing benchmark (catdog vs Pillow + torchvision).
.PHONY: bench-prep
bench-prep: $(BENCH_VENV)/.installed ## preprocessing images/s: catdog vs Pillow + torchvision (bench/prep/RESULTS.md)
	DATA=$(SHARED)/petimages-dev BENCH_VENV=$(BENCH_VENV) GO=$(GO) bench/prep/run.sh
