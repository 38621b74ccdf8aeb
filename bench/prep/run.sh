#!/usr/bin/env bash
# Side-by-side preprocessing benchmark: catdog (Go, bench/prep/main.go) vs Pillow + torchvision
# (bench/prep/pillow_torchvision.py) on the same photos, with the same number of workers.
# Runs are interleaved (catdog, pillow, catdog, pillow, ...) so load changes hit both alike;
# the table reports the median of RUNS runs per side.
#
#   bench/prep/run.sh                      # or: make bench-prep
#   RUNS=7 WORKERS=2 MODES="decode-resize" DATA=../shared/data/petimages-dev bench/prep/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data/petimages-dev}
PY=${BENCH_VENV:-$PWD/.venv-bench}/bin/python
RUNS=${RUNS:-5}
WORKERS=${WORKERS:-2}
MODES=${MODES:-"decode-resize augment"}
GO=${GO:-go}

if [ ! -x "$PY" ]; then
  echo "bench/prep: $PY missing; run 'make bench-venv' first" >&2
  exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$GO" build -o "$out/prep" ./bench/prep

echo "# $(date -u +%FT%TZ) $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2
echo "# data $DATA ($(find "$DATA" -type f | wc -l) files), workers $WORKERS, runs $RUNS, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for mode in $MODES; do
  for r in $(seq "$RUNS"); do
    warm=0; [ "$r" = 1 ] && warm=1
    "$out/prep" -data "$DATA" -mode "$mode" -workers "$WORKERS" -runs 1 -warmup "$warm" | tee -a "$out/results.jsonl" >&2
    "$PY" bench/prep/pillow_torchvision.py --data "$DATA" --mode "$mode" --workers "$WORKERS" --runs 1 --warmup "$warm" | tee -a "$out/results.jsonl" >&2
  done
done

python3 - "$out/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = [r for r in rows if "images_per_s" in r]
info = {r["impl"]: r for r in rows if "median_images_per_s" in r}
modes = []
for r in runs:
    if r["mode"] not in modes:
        modes.append(r["mode"])
print("| mode | catdog images/s | Pillow + torchvision images/s | ratio | catdog CPU ms/image | Pillow + torchvision CPU ms/image | CPU ratio |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for m in modes:
    med, cpu = {}, {}
    for impl in ("catdog", "pillow+torchvision"):
        sel = [r for r in runs if r["mode"] == m and r["impl"] == impl]
        med[impl] = statistics.median([r["images_per_s"] for r in sel]) if sel else float("nan")
        cpu[impl] = statistics.median([r.get("cpu_ms_per_image", float("nan")) for r in sel]) if sel else float("nan")
    c, p = "catdog", "pillow+torchvision"
    print(f"| {m} | {med[c]:.0f} | {med[p]:.0f} | {med[c] / med[p]:.2f}x | {cpu[c]:.2f} | {cpu[p]:.2f} | {cpu[p] / cpu[c]:.2f}x |")
print("\nratio = catdog images/s ÷ Pillow images/s (median of the runs); CPU ratio = Pillow CPU per image ÷ catdog CPU per image (>1: catdog is cheaper).")
p = info.get("pillow+torchvision", {})
print(f"\nversions: {info.get('catdog', {}).get('go')}; Pillow {p.get('pillow')}, torch {p.get('torch')}, torchvision {p.get('torchvision')}, Python {p.get('python')}")
PY
