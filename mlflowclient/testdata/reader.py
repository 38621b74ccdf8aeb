"""Independent reader: checks what catdog's Go client wrote, using the official mlflow client.

Usage: python reader.py EXPECT.json
EXPECT.json:
  {"tracking_uri": "...", "run_id": "...",
   "status": "FINISHED",                         # optional
   "params": {"k": "v"}, "tags": {"k": "v"},
   "metrics": {"key": [[step, value, timestamp_ms], ...]},   # full history, any order; value may be "NaN"
   "artifacts": {"run/relative/path": "/local/file"},         # byte-equal
   "model": {"name": "...", "version": "3", "alias": "champion", "files": {"rel": "/local/file"},
             "mlmodel_flavor": "catdog"}}                      # all optional
Prints one JSON line {"ok": true, "checked": N} or {"ok": false, "errors": [...]}; exit 1 on failure.
"""
import json
import math
import os
import sys
import tempfile

import mlflow
from mlflow import MlflowClient


def same(a, b):
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b


def main():
    with open(sys.argv[1]) as f:
        exp = json.load(f)
    mlflow.set_tracking_uri(exp["tracking_uri"])
    client = MlflowClient(exp["tracking_uri"])
    errors, checked = [], 0

    def check(cond, msg):
        nonlocal checked
        checked += 1
        if not cond:
            errors.append(msg)

    run_id = exp.get("run_id")
    if run_id:
        run = client.get_run(run_id)
        if "status" in exp:
            check(run.info.status == exp["status"], f"status {run.info.status} != {exp['status']}")
            if exp["status"] != "RUNNING":
                check(run.info.end_time is not None, "end_time not set")
        for k, v in exp.get("params", {}).items():
            check(run.data.params.get(k) == v, f"param {k}: {run.data.params.get(k)!r} != {v!r}")
        for k, v in exp.get("tags", {}).items():
            check(run.data.tags.get(k) == v, f"tag {k}: {run.data.tags.get(k)!r} != {v!r}")
        for key, points in exp.get("metrics", {}).items():
            hist = client.get_metric_history(run_id, key)
            got = sorted((m.step, m.timestamp, m.value) for m in hist)
            want = sorted((int(s), int(ts), float(v)) for s, v, ts in points)
            ok = len(got) == len(want) and all(
                g[0] == w[0] and g[1] == w[1] and same(g[2], w[2]) for g, w in zip(got, want))
            check(ok, f"metric {key}: history {got[:5]}... ({len(got)} points) != {want[:5]}... ({len(want)} points)")
        arts = exp.get("artifacts", {})
        if arts:
            with tempfile.TemporaryDirectory() as tmp:
                for rel, local in arts.items():
                    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=rel, dst_path=os.path.join(tmp, "a"))
                    with open(path, "rb") as a, open(local, "rb") as b:
                        check(a.read() == b.read(), f"artifact {rel} differs from {local}")
    model = exp.get("model")
    if model:
        name = model["name"]
        mv = client.get_model_version(name, model["version"])
        if run_id:
            check(mv.run_id == run_id, f"model version run_id {mv.run_id} != {run_id}")
        if model.get("alias"):
            av = client.get_model_version_by_alias(name, model["alias"])
            check(av.version == model["version"], f"alias {model['alias']} -> {av.version} != {model['version']}")
            uri = f"models:/{name}@{model['alias']}"
        else:
            uri = f"models:/{name}/{model['version']}"
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
            for rel, want in model.get("files", {}).items():
                with open(os.path.join(local, rel), "rb") as a, open(want, "rb") as b:
                    check(a.read() == b.read(), f"model file {rel} differs from {want}")
            if model.get("mlmodel_flavor"):
                m = mlflow.models.Model.load(local)
                check(model["mlmodel_flavor"] in m.flavors, f"MLmodel flavors {list(m.flavors)} lack {model['mlmodel_flavor']}")
    print(json.dumps({"ok": not errors, "checked": checked, "errors": errors}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
