"""Python side of the MLflow logging benchmark: the official client, same workload as
bench/mlflow/main.go (20 params, 100 epochs x 8 metrics, run create + terminate inside the
timing). Prints one JSON line of per-repetition wall times."""
import json
import sys
import time

from mlflow import MlflowClient
from mlflow.entities import Metric, Param


def run(client, exp_id, epochs, n_metrics, n_params, mode):
    start = time.perf_counter()
    r = client.create_run(exp_id)
    rid = r.info.run_id
    if mode == "per_call":
        for i in range(n_params):
            client.log_param(rid, f"param_{i:02d}", str(i))
    else:
        client.log_batch(rid, params=[Param(f"param_{i:02d}", str(i)) for i in range(n_params)])
    for ep in range(epochs):
        ts = int(time.time() * 1000)
        if mode == "per_call":
            for m in range(n_metrics):
                client.log_metric(rid, f"metric_{m}", ep * m / 1000, timestamp=ts, step=ep)
        else:
            client.log_batch(rid, metrics=[Metric(f"metric_{m}", ep * m / 1000, ts, ep) for m in range(n_metrics)])
    client.set_terminated(rid, "FINISHED")
    elapsed = time.perf_counter() - start
    assert len(client.get_metric_history(rid, "metric_0")) == epochs
    return elapsed


def main():
    uri, reps = sys.argv[1], int(sys.argv[2])
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("bench-python")
    exp_id = exp.experiment_id if exp else client.create_experiment("bench-python")
    out = {"python_log_metric_per_call": [], "python_log_batch_per_epoch": []}
    for _ in range(reps):
        out["python_log_metric_per_call"].append(run(client, exp_id, 100, 8, 20, "per_call"))
        out["python_log_batch_per_epoch"].append(run(client, exp_id, 100, 8, 20, "batch"))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
