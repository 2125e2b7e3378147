#!/usr/bin/env python3
"""Validation NDCG@10 per epoch of two programs over several seeds: means, their difference and
its noise (2 standard errors, Welch). The data of record is a CSV (program,seed,epoch,valid_ndcg10);
`--add PROGRAM:SEED=RUN` reads a run folder's log.jsonl into it (replacing that program and seed).

    python3 scripts/seeds-compare.py --csv docs/results/recipe-toys-seeds.csv --epochs 17 \
        --add ours:3=runs/seeds/toys-ours-s3 --add pytorch:3=runs/seeds/toys-pytorch-s3
"""
import argparse
import csv
import json
import math
import os
import statistics
import sys

p = argparse.ArgumentParser()
p.add_argument("--csv", required=True)
p.add_argument("--add", action="append", default=[])
p.add_argument("--epochs", type=int, default=None)
p.add_argument("--programs", default="ours,pytorch", help="A,B: the table shows A − B")
a = p.parse_args()

rows = {}
if os.path.exists(a.csv):
    with open(a.csv) as f:
        for r in csv.DictReader(f):
            rows[(r["program"], int(r["seed"]), int(r["epoch"]))] = float(r["valid_ndcg10"])
for spec in a.add:
    try:
        key, run = spec.split("=", 1)
        prog, seed = key.split(":")
        seed = int(seed)
    except ValueError:
        sys.exit(f"--add {spec}: expected PROGRAM:SEED=RUN_FOLDER")
    log = os.path.join(run, "log.jsonl")
    if not os.path.isfile(log):
        sys.exit(f"--add {spec}: {log} not found")
    rows = {k: v for k, v in rows.items() if k[:2] != (prog, seed)}
    with open(log) as f:
        for n, line in enumerate(f, 1):
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{log}:{n}: not JSON ({e})")
            if r.get("valid_ndcg10") is not None:
                rows[(prog, seed, int(r["epoch"]))] = round(float(r["valid_ndcg10"]), 4)
if a.add:
    tmp = a.csv + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["program", "seed", "epoch", "valid_ndcg10"])
        for (prog, seed, ep), v in sorted(rows.items()):
            w.writerow([prog, seed, ep, f"{v:.4f}"])
    os.replace(tmp, a.csv)

A, B = a.programs.split(",")
epochs = sorted({k[2] for k in rows})
if a.epochs:
    epochs = [e for e in epochs if e <= a.epochs]
seeds = {prog: sorted({k[1] for k in rows if k[0] == prog}) for prog in (A, B)}
head = ["epoch", f"{A}: seeds " + " / ".join(map(str, seeds[A])), "mean", "n",
        f"{B}: seeds " + " / ".join(map(str, seeds[B])), "mean", "n",
        f"{A} − {B} (means)", "± 2 SE"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
at_or_above, below_noise, total, diffs = 0, 0, 0, []
for e in epochs:
    cells = [str(e)]
    means, var = {}, {}
    for prog in (A, B):
        vals = [rows.get((prog, s, e)) for s in seeds[prog]]
        cells.append(" / ".join("" if v is None else f"{v:.4f}" for v in vals))
        got = [v for v in vals if v is not None]
        means[prog] = statistics.mean(got) if got else None
        var[prog] = statistics.variance(got) / len(got) if len(got) > 1 else None
        cells += [f"{means[prog]:.4f}" if got else "", str(len(got))]
    if means[A] is None or means[B] is None:
        continue
    d = means[A] - means[B]
    se = math.sqrt(var[A] + var[B]) if var[A] is not None and var[B] is not None else None
    cells += [f"{d:+.4f}", f"{2 * se:.4f}" if se is not None else ""]
    total += 1
    diffs.append(d)
    at_or_above += d >= 0
    below_noise += se is not None and d < -2 * se
    print("| " + " | ".join(cells) + " |")
print()
if not diffs:
    sys.exit(f"no epoch has runs of both {A} and {B}")
print(f"- {A} at or above {B} (means) at {at_or_above} of {total} epochs; below by more than two "
      f"standard errors at {below_noise}; mean difference over the epochs {statistics.mean(diffs):+.4f}.")
