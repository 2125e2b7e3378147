#!/usr/bin/env python3
"""Summarises an `ssi reproduce` folder for docs/results/: every run's epochs, minutes, best
validation and test NDCG@10, and the λ_i trajectory of each distillation run."""
import json
import os
import signal
import sys

# Piped into `head`: stop quietly instead of a BrokenPipeError traceback.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)

root = sys.argv[1]
print("| run | epochs | train minutes | best epoch (kept by) | best valid NDCG@10 | test NDCG@10 | test Recall@10 | full NDCG@10 |")
print("|---|---|---|---|---|---|---|---|")


def valid_at(d, epoch):
    """The sampled validation NDCG@10 of `epoch` in the run's log: state.json's best value is
    the figure of the run's `select_by` (full ranking, or the mean of both), not always this."""
    log = os.path.join(d, "log.jsonl")
    if not os.path.isfile(log):
        return None
    for line in open(log):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("epoch") == epoch and "valid_ndcg10" in r:
            return r["valid_ndcg10"]
    return None


for name in sorted(os.listdir(root)):
    d = os.path.join(root, name)
    if not os.path.isfile(os.path.join(d, "state.json")):
        continue
    st = json.load(open(os.path.join(d, "state.json")))
    t = {}
    if os.path.isfile(os.path.join(d, "test.json")):
        t = json.load(open(os.path.join(d, "test.json")))
    f = lambda k: f"{t[k]:.4f}" if k in t else "-"
    v = valid_at(d, st["best_epoch"])
    by = st.get("select_by") or "sampled"
    print(f"| {name} | {st['epoch']} | {st['train_seconds'] / 60:.1f} | {st['best_epoch']} ({by}) | "
          f"{'-' if v is None else f'{v:.4f}'} | {f('ndcg@10')} | {f('recall@10')} | {f('full_ndcg@10')} |")
for name in sorted(os.listdir(root)):
    log = os.path.join(root, name, "log.jsonl")
    if not os.path.isfile(log):
        continue
    rows = [json.loads(l) for l in open(log)]
    if not any("lambda" in r for r in rows):
        continue
    print(f"\n{name}: λ_i per epoch (valid NDCG@10)\n")
    print("| epoch | loss | " + " | ".join(rows[0]["lambda"].keys()) + " | valid NDCG@10 |")
    print("|---|---|" + "---|" * len(rows[0]["lambda"]) + "---|")
    for r in rows:
        print(f"| {r['epoch']} | {r['loss']:.3f} | " + " | ".join(f"{v:.3f}" for v in r["lambda"].values())
              + f" | {r['valid_ndcg10']:.4f} |")
