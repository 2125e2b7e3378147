#!/usr/bin/env python3
"""Checks the stopping rule on a long run: where would a run with the given patience have stopped,
and had it by then reached 98 % of the long run's best validation NDCG@10?

Training is deterministic per (seed, epoch), so a run with less patience follows the long run's
log exactly until it stops: its stopping epoch is read off the long run's `log.jsonl`.

    python3 scripts/stopping-check.py RUN_DIR [PATIENCE PATIENCE_STEPS]   (defaults 5 1000)

Prints one JSON object: the default's stop epoch and best, the long run's best, the epoch where the
long run first reached 98 % of its best, and `ok` (the default stopped no earlier than that).
"""
import json
import os
import sys

run = sys.argv[1]
patience = int(sys.argv[2]) if len(sys.argv) > 2 else 5
patience_steps = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
rows = [json.loads(l) for l in open(os.path.join(run, "log.jsonl"))]
best, best_epoch, best_step, bad, steps, stop = -1.0, 0, 0, 0, 0, None
for r in rows:
    steps += r["steps"]
    v = r.get("valid_ndcg10")
    if v is None:
        continue
    if v > best:
        best, best_epoch, best_step, bad = v, r["epoch"], steps, 0
    else:
        bad += 1
    if bad >= patience and steps - best_step >= patience_steps:
        stop = r["epoch"]
        break
long_best = max(r["valid_ndcg10"] for r in rows if r.get("valid_ndcg10") is not None)
reach = next(r["epoch"] for r in rows if (r.get("valid_ndcg10") or 0) >= 0.98 * long_best)
print(json.dumps({
    "run": run, "epochs_in_long_run": len(rows), "patience": patience,
    "patience_steps": patience_steps, "default_stops_after_epoch": stop,
    "default_best": round(best, 4), "default_best_epoch": best_epoch,
    "long_best": round(long_best, 4), "long_reaches_98pct_at_epoch": reach,
    "ok": stop is None or stop >= reach,
}))
