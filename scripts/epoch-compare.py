#!/usr/bin/env python3
"""Validation NDCG@10 per epoch of several runs side by side (and the λ_i of the first run that
has them), as a Markdown table: `python3 scripts/epoch-compare.py runs/reproduce-toys ssi-hgn hgn`."""
import json
import os
import sys

root, names = sys.argv[1], sys.argv[2:]
logs = {}
for n in names:
    path = os.path.join(root, n, "log.jsonl")
    logs[n] = [json.loads(l) for l in open(path)] if os.path.isfile(path) else []
# The epoch each run keeps (its last improvement), marked in bold.
best = {n: max((r["epoch"] for r in v if r.get("best")), default=0) for n, v in logs.items()}
lam_run = next((n for n in names if any("lambda" in r for r in logs[n])), None)
lam_keys = list(logs[lam_run][0]["lambda"].keys()) if lam_run else []
head = ["epoch"] + [f"{n} s" for n in names[:1]] + [f"valid NDCG@10, {n}" for n in names]
head += [f"λ {k} ({lam_run})" for k in lam_keys]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for e in range(max(len(v) for v in logs.values())):
    cells = [str(e + 1)]
    first = logs[names[0]]
    cells.append(f"{first[e]['seconds']:.0f}" if e < len(first) else "")
    for n in names:
        r = logs[n][e] if e < len(logs[n]) else None
        v = r.get("valid_ndcg10") if r else None
        cells.append(("**{:.4f}**" if e + 1 == best[n] else "{:.4f}").format(v) if v is not None
                     else "(stopped)")
    if lam_run:
        r = logs[lam_run][e] if e < len(logs[lam_run]) else None
        cells += [f"{r['lambda'][k]:.3f}" if r else "" for k in lam_keys]
    print("| " + " | ".join(cells) + " |")
