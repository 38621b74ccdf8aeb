#!/usr/bin/env bash
# The honest quality measurement of a model directory: its own test split and the shifted copy
# of that split (bench/quality: other JPEG encoder and qualities, other sizes, other crops).
# Usage: bench/quality/run.sh [MODEL_DIR [RUN_ID]]
#   PREPARED (default data/prepared) is the prepared folder the model was trained on;
#   SHIFTED (default data/shifted) is (re)built from its test split when missing.
#   With RUN_ID and MLFLOW_TRACKING_URI the figures are logged to that MLflow run.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${1:-models}
run=${2:-}
prepared=${PREPARED:-data/prepared}
shifted=${SHIFTED:-data/shifted}
"${GO:-go}" build -o bin/quality ./bench/quality
[ -d "$shifted" ] || bin/quality shift -data "$prepared" -out "$shifted"
bin/quality eval -model "$model" -data "$prepared" -shifted "$shifted" ${run:+-run-id "$run"} ${JSON:+-json "$JSON"}
