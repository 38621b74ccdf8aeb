#!/usr/bin/env python3
"""Pillow + torchvision side of bench/prep (see run.sh).

Modes (same files, workers and runs as bench/prep/main.go):
  decode         Image.open(p).convert("RGB")
  decode-resize  Image.open(p).convert("RGB") + torchvision.transforms.Resize((224, 224))
  augment        the usual PyTorch per-epoch input: decode + RandomResizedCrop(224, scale=(0.5, 1))
                 + RandomHorizontalFlip + ColorJitter(0.2, 0.2, 0.2) + ToTensor + Normalize
Workers are processes (like a DataLoader with num_workers), each with torch.set_num_threads(1).
Prints one JSON line per run (with the CPU time the workers spent per image) and a final line with
the median.
"""
import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time

_files = []
_fn = None


def _init(files, mode, size):
    global _files, _fn
    import torch
    import torchvision
    import torchvision.transforms as T
    from PIL import Image

    torch.set_num_threads(1)
    _files = files
    if mode == "decode":
        def fn(p):
            Image.open(p).convert("RGB")
    elif mode == "decode-resize":
        resize = T.Resize((size, size), antialias=True)

        def fn(p):
            resize(Image.open(p).convert("RGB"))
    elif mode == "augment":
        tf = T.Compose([
            T.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True),
            T.RandomHorizontalFlip(),
            T.ColorJitter(0.2, 0.2, 0.2),
            T.ToTensor(),
            T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ])

        def fn(p):
            tf(Image.open(p).convert("RGB"))
    else:
        raise SystemExit(f"unknown mode {mode}")
    _fn = fn


def _work(chunk):
    c0 = time.process_time()
    for i in chunk:
        _fn(_files[i])
    return len(chunk), time.process_time() - c0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/petimages-dev")
    ap.add_argument("--mode", default="decode-resize")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--size", type=int, default=224)
    a = ap.parse_args()

    files = []
    for root, _, names in os.walk(a.data):
        files += [os.path.join(root, n) for n in names if n.endswith((".jpg", ".png"))]
    files.sort()
    chunks = [list(range(i, min(i + 16, len(files)))) for i in range(0, len(files), 16)]

    import PIL
    import torch
    import torchvision

    rates = []
    with mp.get_context("fork").Pool(a.workers, initializer=_init, initargs=(files, a.mode, a.size)) as pool:
        for r in range(a.warmup + a.runs):
            t0 = time.perf_counter()
            n, cpu = 0, 0.0
            for k, c in pool.imap_unordered(_work, chunks):
                n, cpu = n + k, cpu + c
            el = time.perf_counter() - t0
            assert n == len(files)
            if r < a.warmup:
                continue
            rate = n / el
            rates.append(rate)
            print(json.dumps({"impl": "pillow+torchvision", "mode": a.mode, "run": r - a.warmup + 1,
                              "images": n, "seconds": el, "images_per_s": rate,
                              "cpu_ms_per_image": cpu * 1000 / n}), flush=True)
    print(json.dumps({"impl": "pillow+torchvision", "mode": a.mode, "median_images_per_s": statistics.median(rates),
                      "runs": len(rates), "workers": a.workers, "pillow": PIL.__version__,
                      "torch": torch.__version__, "torchvision": torchvision.__version__,
                      "python": sys.version.split()[0]}), flush=True)


if __name__ == "__main__":
    main()
