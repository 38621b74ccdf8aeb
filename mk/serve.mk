# inference / serving: `make bench-serve` compares catdog serve with the FastAPI + PyTorch peer.
BENCH_SERVE_DIR    ?= $(CACHE)/bench-serve
BENCH_SERVE_THREADS ?= 2
BENCH_SERVE_REPS   ?= 3
BENCH_SERVE_DUR    ?= 10s
# typical dev photos (500x374 and similar), sent round-robin as multipart "file" uploads
BENCH_SERVE_PHOTOS := $(addprefix $(SHARED)/petimages-dev/,Cat/cat.1.jpg Cat/cat.2.jpg Cat/cat.3.jpg Cat/cat.4.jpg Dog/dog.1.jpg Dog/dog.2.jpg Dog/dog.3.jpg Dog/dog.4.jpg)

# A 224x224 model with the architecture of params.yaml, trained for one epoch on 200 photos:
# serving cost does not depend on how well it was trained.
$(BENCH_SERVE_DIR)/model/model.json: params.yaml
	rm -rf $(BENCH_SERVE_DIR)/photos && mkdir -p $(BENCH_SERVE_DIR)/photos/Cat $(BENCH_SERVE_DIR)/photos/Dog
	for i in $$(seq 0 99); do \
	  ln -s $(SHARED)/petimages-dev/Cat/cat.$$i.jpg $(BENCH_SERVE_DIR)/photos/Cat/; \
	  ln -s $(SHARED)/petimages-dev/Dog/dog.$$i.jpg $(BENCH_SERVE_DIR)/photos/Dog/; done
	$(CATDOG) prepare --data $(BENCH_SERVE_DIR)/photos --out $(BENCH_SERVE_DIR)/prepared --size 224 -q
	$(CATDOG) train --params params.yaml --data $(BENCH_SERVE_DIR)/prepared --out $(BENCH_SERVE_DIR)/model --epochs 1 --input-size 224 --name catdog-bench -q

.PHONY: bench-serve
bench-serve: build bench-venv ## catdog serve vs FastAPI + uvicorn + PyTorch at concurrency 1, 8, 32 (results in $(BENCH_SERVE_DIR))
	$(MAKE) --no-print-directory $(BENCH_SERVE_DIR)/model/model.json
	$(GO) run ./bench/serve/runbench -catdog $(CATDOG) -model $(BENCH_SERVE_DIR)/model \
	  -python $(BENCH_VENV)/bin/python -fastapi bench/serve/fastapi_server.py \
	  -threads $(BENCH_SERVE_THREADS) -reps $(BENCH_SERVE_REPS) -d $(BENCH_SERVE_DUR) \
	  -json $(BENCH_SERVE_DIR)/results.json $(BENCH_SERVE_PHOTOS) | tee $(BENCH_SERVE_DIR)/results.md

.PHONY: bench-serve-drift
bench-serve-drift: build ## serving cost of live drift: catdog serve with and without --no-drift, interleaved, c=1 and 8 (~4 min after the one-time bench model; results in $(BENCH_SERVE_DIR)/drift.md)
	$(MAKE) --no-print-directory $(BENCH_SERVE_DIR)/model/model.json
	$(GO) run ./bench/serve/runbench -drift-overhead -catdog $(CATDOG) -model $(BENCH_SERVE_DIR)/model \
	  -threads $(BENCH_SERVE_THREADS) -reps 5 -c 1,8 -d 8s -warm 2s \
	  -json $(BENCH_SERVE_DIR)/drift.json $(BENCH_SERVE_PHOTOS) | tee $(BENCH_SERVE_DIR)/drift.md
