#!/usr/bin/env python3
"""Prints a run's log.jsonl (and test.json) as the Markdown tables of docs/results/."""
import json
import sys

run = sys.argv[1]
rows = [json.loads(l) for l in open(f"{run}/log.jsonl")]
lam = any("lambda" in r for r in rows)
print("| epoch | loss | seconds | seq/s | valid NDCG@10 | valid Recall@10 |" + (" λ |" if lam else ""))
print("|---|---|---|---|---|---|" + ("---|" if lam else ""))
for r in rows:
    extra = ""
    if lam:
        extra = " " + ", ".join(f"{k} {v:.3f}" for k, v in r.get("lambda", {}).items()) + " |"
    print(f"| {r['epoch']}{' (best)' if r['best'] else ''} | {r['loss']:.3f} | {r['seconds']:.0f} | {r['seqs_per_s']:.0f} | "
          f"{r['valid_ndcg10']:.4f} | {r['valid_recall10']:.4f} |{extra}")
try:
    t = json.load(open(f"{run}/test.json"))
    st = json.load(open(f"{run}/state.json"))
    print()
    print(f"Training time {st['train_seconds'] / 60:.1f} min, {st['epoch']} epochs, best epoch {st['best_epoch']}.")
    print()
    print("| protocol | Recall@5 | NDCG@5 | Recall@10 | NDCG@10 | Recall@20 | NDCG@20 | MRR |")
    print("|---|---|---|---|---|---|---|---|")
    for name, p in [("99 sampled negatives", ""), ("all items (history excluded)", "full_")]:
        print(f"| {name} | " + " | ".join(f"{t[p + k]:.4f}" for k in
              ["recall@5", "ndcg@5", "recall@10", "ndcg@10", "recall@20", "ndcg@20", "mrr"]) + " |")
except FileNotFoundError:
    pass
