"""Independent reader: checks what catdog's Go client wrote, using the official mlflow client.

Usage: python reader.py EXPECT.json
EXPECT.json:
  {"tracking_uri": "...", "run_id": "...",
   "status": "FINISHED",                         # optional
   "params": {"k": "v"}, "tags": {"k": "v"},
   "metrics": {"key": [[step, value, timestamp_ms], ...]},   # full history, any order; value may be "NaN"
   "artifacts": {"run/relative/path": "/local/file"},         # byte-equal
   "model": {"name": "...", "version": "3", "alias": "champion", "files": {"rel": "/local/file"},
             "mlmodel_flavor": "catdog"},
   "experiment_tags": {"mlflow.experimentKind": "custom_model_development"},
   "datasets": [{"name": "...", "digest": "...", "source_type": "...", "source": {...}, "profile": {...},
                 "context": "training"}],                     # source/profile compared as JSON
   "logged_model": {"name": "model", "status": "READY", "metrics": {"k": v}, "params": {"k": "v"},
                    "files": {"rel": "/local/file"}, "registered": {"name": "...", "version": "3"},
                    "step": 3},
   "children": {"count": 4, "status": "FINISHED", "tag": {"k": "v"}, "params": ["lr"], "metrics": ["val_accuracy"]}}
                                                               # all optional
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
    if run_id and exp.get("experiment_tags"):
        e = client.get_experiment(run.info.experiment_id)
        for k, v in exp["experiment_tags"].items():
            check(e.tags.get(k) == v, f"experiment tag {k}: {e.tags.get(k)!r} != {v!r}")
    for want in exp.get("datasets", []):
        got = [d for d in run.inputs.dataset_inputs if d.dataset.name == want["name"]]
        check(len(got) == 1, f"dataset input {want['name']}: {len(got)} inputs (run has {[d.dataset.name for d in run.inputs.dataset_inputs]})")
        if got:
            d = got[0].dataset
            check(d.digest == want["digest"], f"dataset digest {d.digest!r} != {want['digest']!r}")
            check(d.source_type == want["source_type"], f"dataset source_type {d.source_type!r} != {want['source_type']!r}")
            check(json.loads(d.source) == want["source"], f"dataset source {d.source} != {want['source']}")
            check(json.loads(d.profile) == want["profile"], f"dataset profile {d.profile} != {want['profile']}")
            ctx = {t.key: t.value for t in got[0].tags}.get("mlflow.data.context")
            check(ctx == want.get("context"), f"dataset context {ctx!r} != {want.get('context')!r}")
    lm_want = exp.get("logged_model")
    if lm_want:
        outs = run.outputs.model_outputs if run.outputs else []
        check(len(outs) == 1, f"run outputs: {outs}")
        models = client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                             filter_string=f"source_run_id = '{run_id}'")
        check(len(models) == 1, f"{len(models)} logged models of the run")
        if models:
            lm = client.get_logged_model(models[0].model_id)
            check(bool(outs) and outs[0].model_id == lm.model_id, f"run output {outs} is not the logged model {lm.model_id}")
            if "step" in lm_want and outs:
                check(outs[0].step == lm_want["step"], f"output step {outs[0].step} != {lm_want['step']}")
            check(lm.name == lm_want["name"], f"logged model name {lm.name!r} != {lm_want['name']!r}")
            check(str(lm.status) == lm_want.get("status", "READY"), f"logged model status {lm.status}")
            check(lm.source_run_id == run_id, f"logged model source_run_id {lm.source_run_id} != {run_id}")
            lmetrics = {m.key: m.value for m in lm.metrics or []}
            for k, v in lm_want.get("metrics", {}).items():
                check(k in lmetrics and same(lmetrics[k], v), f"logged model metric {k}: {lmetrics.get(k)!r} != {v!r}")
            for k, v in lm_want.get("params", {}).items():
                check(lm.params.get(k) == v, f"logged model param {k}: {lm.params.get(k)!r} != {v!r}")
            files = lm_want.get("files", {})
            if files:
                with tempfile.TemporaryDirectory() as tmp:
                    local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{lm.model_id}", dst_path=tmp)
                    for rel, want in files.items():
                        with open(os.path.join(local, rel), "rb") as a, open(want, "rb") as b:
                            check(a.read() == b.read(), f"logged model file {rel} differs from {want}")
                    m = mlflow.models.Model.load(local)
                    check(m.model_id == lm.model_id and m.run_id == run_id, f"MLmodel model_id {m.model_id} run_id {m.run_id}")
            reg = lm_want.get("registered")
            if reg:
                mv = client.get_model_version(reg["name"], reg["version"])
                check(mv.source == f"models:/{lm.model_id}", f"version source {mv.source} != models:/{lm.model_id}")
                check(mv.run_id == run_id, f"version run_id {mv.run_id} != {run_id}")
                linked = json.loads(lm.tags.get("mlflow.modelVersions", "[]"))
                check(any(v["name"] == reg["name"] and str(v["version"]) == reg["version"] for v in linked),
                      f"logged model tag mlflow.modelVersions {linked} lacks {reg}")
    children = exp.get("children")
    if children:
        kids = client.search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
                                  max_results=1000)
        if children.get("status"):
            kids = [k for k in kids if k.info.status == children["status"]]
        check(len(kids) == children["count"], f"{len(kids)} child runs of {run_id}, want {children['count']}")
        for k in kids:
            for tk, tv in children.get("tag", {}).items():
                check(k.data.tags.get(tk) == tv, f"child {k.info.run_id} tag {tk}: {k.data.tags.get(tk)!r} != {tv!r}")
            for p in children.get("params", []):
                check(p in k.data.params, f"child {k.info.run_id} lacks param {p}")
            for m in children.get("metrics", []):
                hist = client.get_metric_history(k.info.run_id, m)
                check(len(hist) >= 1, f"child {k.info.run_id} has no {m} history")
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
