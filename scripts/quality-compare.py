#!/usr/bin/env python3
"""Runs side by side: validation NDCG@10 per epoch and cumulative training minutes, then the test
figures of each run's best epoch (sampled-99 and full ranking), as Markdown.

    python3 scripts/quality-compare.py [--csv FILE] NAME=RUN_DIR NAME=RUN_DIR ...

`--csv FILE` also writes every epoch as `epoch,NAME_valid_ndcg10,NAME_train_minutes,...`.

A run folder holds `log.jsonl` (one line per epoch: `epoch`, `seconds`, `valid_ndcg10`, `best`)
and, once finished, `test.json` (the keys of `ssi eval --json`): what `ssi train` and
bench/quality_ref.py write.
"""
import json
import os
import sys


def load(path):
    log = os.path.join(path, "log.jsonl")
    rows = [json.loads(l) for l in open(log)] if os.path.isfile(log) else []
    test = os.path.join(path, "test.json")
    if not os.path.isfile(test):
        return rows, None
    # A run resumed past an earlier stop trains on with that stop's test.json: ours says so in
    # state.json, and for either program epochs logged after test.json was written show it.
    state = os.path.join(path, "state.json")
    if os.path.isfile(state) and not json.load(open(state)).get("finished", False):
        return rows, None
    if os.path.isfile(log) and os.path.getmtime(log) > os.path.getmtime(test):
        return rows, None
    return rows, json.load(open(test))


def main():
    runs = []
    args = sys.argv[1:]
    csv_path = None
    if len(args) >= 2 and args[0] == "--csv":
        csv_path, args = args[1], args[2:]
    for arg in args:
        name, _, path = arg.partition("=")
        runs.append((name, *load(path or name)))
    if not runs:
        sys.exit(__doc__)
    head = ["epoch"] + [f"{n}: valid NDCG@10 (min)" for n, _, _ in runs]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for e in range(max(len(r) for _, r, _ in runs)):
        cells = [str(e + 1)]
        for _, rows, _ in runs:
            if e >= len(rows):
                cells.append("")
                continue
            r = rows[e]
            minutes = sum(x["seconds"] for x in rows[: e + 1]) / 60
            v = r.get("valid_ndcg10")
            text = "-" if v is None else f"{v:.4f}"
            cells.append(f"{'**' + text + '**' if r.get('best') else text} ({minutes:.1f})")
        print("| " + " | ".join(cells) + " |")
    if csv_path:
        write_csv(csv_path, runs)
    print()
    print("| run | best epoch | training min to best | test NDCG@10 (99 sampled) | Recall@10 | full NDCG@10 | full Recall@10 |")
    print("|---|---|---|---|---|---|---|")
    for name, rows, test in runs:
        best = max((r["epoch"] for r in rows if r.get("best")), default=None)
        to_best = sum(r["seconds"] for r in rows if best and r["epoch"] <= best) / 60
        if test is None:
            print(f"| {name} | {best} | {to_best:.1f} | (not finished) | | | |")
            continue
        f = lambda k: f"{test[k]:.4f}" if k in test else "-"
        print(f"| {name} | {best} | {to_best:.1f} | {f('ndcg@10')} | {f('recall@10')} | {f('full_ndcg@10')} | {f('full_recall@10')} |")


def write_csv(path, runs):
    head = ["epoch"]
    for n, _, _ in runs:
        head += [f"{n}_valid_ndcg10", f"{n}_train_minutes"]
    lines = [",".join(head)]
    for e in range(max(len(r) for _, r, _ in runs)):
        cells = [str(e + 1)]
        for _, rows, _ in runs:
            if e >= len(rows) or rows[e].get("valid_ndcg10") is None:
                cells += ["", ""]
                continue
            minutes = sum(x["seconds"] for x in rows[: e + 1]) / 60
            cells += [f"{rows[e]['valid_ndcg10']:.4f}", f"{minutes:.1f}"]
        lines.append(",".join(cells))
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
