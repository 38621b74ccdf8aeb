#!/usr/bin/env python3
"""Screenshot a catdog training run in the MLflow UI with headless Chromium.

Usage (after `make run`; `make mlflow-screenshot` does this):
    .venv/bin/python scripts/mlflow-screenshot.py [--tracking-uri URI] [--run-id ID] [--out docs/mlflow-ui.png]

Finds the latest finished run of the experiment (default `catdog`) through the MLflow Python
client, checks that the experiment is a model-training experiment (mlflow.experimentKind =
custom_model_development, so that MLflow 3 shows "Training runs" and not the GenAI overview),
and writes three views of it, one above the other, into one PNG: the experiment's "Training
runs" table (its Dataset and Models columns), and the run's learning_curves.png and
confusion_matrix.png artifacts. The run's "Model metrics" tab is left out: its charts render
only after an unbounded wait on the server, so a headless shot of it came out blank at random.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from mlflow.tracking import MlflowClient
from PIL import Image

KIND_TAG = "mlflow.experimentKind"
KIND_TRAINING = "custom_model_development"


def default_uri():
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".mlflow", "uri")
    if os.path.exists(here):
        with open(here) as f:
            return f.read().strip()
    return "http://127.0.0.1:5000"


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("mlflow-screenshot: no Chromium found (Debian: apt-get install chromium)")


def shoot(chromium, url, out, width, height, budget_ms):
    # The background-networking switches keep Chromium from dialling its update and sync
    # services: only the MLflow server on the tracking URI is contacted.
    cmd = [chromium, "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           "--no-default-browser-check", "--disable-quic", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", f"--window-size={width},{height}",
           f"--virtual-time-budget={budget_ms}", f"--screenshot={out}", url]
    if os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")  # Chromium refuses to start its sandbox as root
    with tempfile.TemporaryDirectory(prefix="catdog-chromium-") as profile:
        cmd.insert(1, f"--user-data-dir={profile}")
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if res.returncode != 0 or not os.path.exists(out):
        sys.exit(f"mlflow-screenshot: chromium failed on {url} (exit {res.returncode}):\n{res.stderr[-2000:]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracking-uri", default=default_uri())
    ap.add_argument("--experiment", default="catdog")
    ap.add_argument("--run-id", default="", help="default: the latest finished run of --experiment")
    ap.add_argument("--out", default="docs/mlflow-ui.png")
    ap.add_argument("--width", type=int, default=1900)
    ap.add_argument("--budget-ms", type=int, default=60000, help="virtual time the page gets to render")
    args = ap.parse_args()

    uri = args.tracking_uri.rstrip("/")
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(args.experiment)
    if exp is None:
        sys.exit(f"mlflow-screenshot: no experiment {args.experiment!r} on {uri} (run `make run` first)")
    if exp.tags.get(KIND_TAG) != KIND_TRAINING:
        sys.exit(f"mlflow-screenshot: experiment {args.experiment!r} lacks {KIND_TAG}={KIND_TRAINING}; "
                 "MLflow 3 would show the GenAI overview instead of its training runs")
    if args.run_id:
        run = client.get_run(args.run_id)
    else:
        runs = client.search_runs([exp.experiment_id], filter_string="attributes.status = 'FINISHED'",
                                  order_by=["attributes.start_time DESC"], max_results=20)
        # The parent run of a sweep has no curves of its own; take a training run.
        runs = [r for r in runs if "val_accuracy" in r.data.metrics]
        if not runs:
            sys.exit(f"mlflow-screenshot: no finished training run in {args.experiment!r} on {uri}")
        run = runs[0]
    rid, eid = run.info.run_id, exp.experiment_id
    artifacts = {a.path for a in client.list_artifacts(rid)}
    for want in ("learning_curves.png", "confusion_matrix.png"):
        if want not in artifacts:
            sys.exit(f"mlflow-screenshot: run {rid} has no {want} artifact (has {sorted(artifacts)})")

    chromium = find_chromium()
    views = [(f"{uri}/#/experiments/{eid}/runs", 500),
             (f"{uri}/#/experiments/{eid}/runs/{rid}/artifacts/learning_curves.png", 800),
             (f"{uri}/#/experiments/{eid}/runs/{rid}/artifacts/confusion_matrix.png", 800)]
    with tempfile.TemporaryDirectory(prefix="catdog-shot-") as tmp:
        shots = []
        for i, (url, height) in enumerate(views):
            path = os.path.join(tmp, f"{i}.png")
            print(f"mlflow-screenshot: {url}", file=sys.stderr)
            shoot(chromium, url, path, args.width, height, args.budget_ms)
            shots.append(Image.open(path).convert("RGB"))
        page = Image.new("RGB", (max(s.width for s in shots), sum(s.height for s in shots)), "white")
        y = 0
        for s in shots:
            page.paste(s, (0, y))
            y += s.height
        tmp_out = args.out + ".tmp"
        page.save(tmp_out, "PNG", optimize=True)
        os.replace(tmp_out, args.out)
    print(f"mlflow-screenshot: run {rid} ({run.info.run_name}) -> {args.out} ({page.width}x{page.height})")


if __name__ == "__main__":
    main()
