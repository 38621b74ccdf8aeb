#!/usr/bin/env bash
# Training throughput, side by side in one run: catdog (gotch/libtorch 2.1.2) vs PyTorch 2.1.2,
# same architecture (catdognet-v1), batch, input size and thread count. Alternates the two
# implementations ROUNDS times and prints every result; BENCHMARKS.md quotes the medians.
# Usage: bench/train/run.sh [ROUNDS]   (needs `make libtorch bench-venv`)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
threads=${THREADS:-2}
batch=${BATCH:-32}
size=${SIZE:-224}
go build -o bin/trainbench ./bench/train
for r in $(seq "$rounds"); do
  bin/trainbench -threads "$threads" -batch "$batch" -size "$size"
  OMP_NUM_THREADS=$threads .venv-bench/bin/python bench/train/torch_train.py --threads "$threads" --batch "$batch" --size "$size"
done
