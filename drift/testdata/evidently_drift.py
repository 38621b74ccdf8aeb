"""Run Evidently's DataDriftPreset on two feature tables and print what it decided, as JSON.

Usage: evidently_drift.py CASES.json [REPEAT [HTML_DIR]]

CASES.json is a list of {"name", "reference", "current", "kinds"}: two CSV files and a map of
every column to "numerical" or "categorical" (the DataDefinition). They run in one process, so
Evidently is imported once. The output maps each case name to its result: per column, Evidently's method (stattest name), score, threshold and drift decision, the
PSI of the same column (Evidently's "psi" stattest), and the preset's drifted-columns count and
share. REPEAT (default 1) runs the report that many times and reports the median seconds of
one run, for bench/drift. With HTML_DIR, each run also saves the report's HTML page there
(Snapshot.save_html) and "seconds_report" is the median of run + save: the whole report.
"""

import json
import statistics
import sys
import time

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.legacy.calculations.stattests import psi_stat_test
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType
from evidently.presets import DataDriftPreset


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    html_dir = sys.argv[3] if len(sys.argv) > 3 else None
    out = {}
    for i, case in enumerate(cases):
        html = f"{html_dir}/case{i}.html" if html_dir else None
        out[case["name"]] = run(case["reference"], case["current"], case["kinds"], repeat, html)
    json.dump(out, sys.stdout)


def run(ref_path, cur_path, kinds, repeat, html=None):
    ref = pd.read_csv(ref_path, float_precision="round_trip").astype(float)
    cur = pd.read_csv(cur_path, float_precision="round_trip").astype(float)
    num = [c for c, k in kinds.items() if k == "numerical"]
    cat = [c for c, k in kinds.items() if k == "categorical"]
    definition = DataDefinition(numerical_columns=num, categorical_columns=cat)

    seconds, seconds_report = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(cur, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition),
        )
        seconds.append(time.perf_counter() - start)
        if html:
            snapshot.save_html(html)
            seconds_report.append(time.perf_counter() - start)
    metrics = snapshot.dict()["metrics"]

    preset = {}
    count = share = None
    for m in metrics:
        cfg = m["config"]
        if cfg["type"].endswith(":ValueDrift"):
            preset[cfg["column"]] = {"display": cfg["method"], "threshold": cfg["threshold"], "score": m["value"]}
        elif cfg["type"].endswith(":DriftedColumnsCount"):
            count, share = m["value"]["count"], m["value"]["share"]

    columns = []
    for name, kind in kinds.items():
        ctype = ColumnType.Numerical if kind == "numerical" else ColumnType.Categorical
        test = get_stattest(ref[name], cur[name], ctype, None)
        result = test(ref[name], cur[name], ctype, None)
        psi = psi_stat_test(ref[name], cur[name], ctype, None)
        p = preset[name]
        if p["display"] != test.display_name or float(p["score"]) != float(result.drift_score):
            raise SystemExit(f"{name}: preset says {p}, stattest {test.name} says {result}")
        columns.append({
            "feature": name,
            "method": test.name,
            "score": float(p["score"]),
            "threshold": float(p["threshold"]),
            "drifted": bool(result.drifted),
            "psi": float(psi.drift_score),
            "psi_drifted": bool(psi.drifted),
        })
    return {
        "columns": columns,
        "drifted_columns": count,
        "drifted_share": share,
        "dataset_drift": bool(share >= 0.5),
        "seconds": statistics.median(seconds),
        "seconds_report": statistics.median(seconds_report) if seconds_report else None,
        "reference_rows": len(ref),
        "current_rows": len(cur),
    }


if __name__ == "__main__":
    main()
