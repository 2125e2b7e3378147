#!/usr/bin/env python3
"""Runs side by side: validation NDCG@10 per epoch and cumulative training minutes, then the test
figures of each run's best epoch (sampled-99 and full ranking), as Markdown.

    python3 scripts/quality-compare.py [--csv FILE] [--blocks A,B] NAME=RUN_DIR NAME=RUN_DIR ...

`--csv FILE` also writes every epoch as `epoch,NAME_valid_ndcg10,NAME_train_minutes,...`.
`--blocks A,B` prints, instead of every epoch, the mean per block of epochs (1–5, 6–10, then tens)
over the epochs every run has, with A − B and the number of epochs at which A is below B.

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
    csv_path = blocks = None
    while len(args) >= 2 and args[0] in ("--csv", "--blocks"):
        if args[0] == "--csv":
            csv_path = args[1]
        else:
            blocks = args[1].split(",")
        args = args[2:]
    for arg in args:
        name, _, path = arg.partition("=")
        runs.append((name, *load(path or name)))
    if not runs:
        sys.exit(__doc__)
    if blocks:
        print_blocks(runs, *blocks)
    else:
        print_epochs(runs)
    if csv_path:
        write_csv(csv_path, runs)
    print_tests(runs)


def print_epochs(runs):
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


def print_blocks(runs, a, b):
    valid = {n: {r["epoch"]: r["valid_ndcg10"] for r in rows if r.get("valid_ndcg10") is not None}
             for n, rows, _ in runs}
    if a not in valid or b not in valid:
        sys.exit(f"--blocks {a},{b}: both must be run names ({', '.join(valid)})")
    last = max(max(v, default=0) for v in valid.values())
    spans = [(1, 5), (6, 10)] + [(s, s + 9) for s in range(11, last + 1, 10)]
    head = ["epochs"] + list(valid) + [f"{a} − {b}", f"epochs {a} is below {b}"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for lo, hi in spans:
        es = [e for e in range(lo, hi + 1) if all(e in v for v in valid.values())]
        if not es:
            continue
        mean = {n: sum(v[e] for e in es) / len(es) for n, v in valid.items()}
        below = sum(valid[a][e] < valid[b][e] for e in es)
        cells = [f"{es[0]}–{es[-1]}"] + [f"{m:.4f}" for m in mean.values()]
        cells += [f"{mean[a] - mean[b]:+.4f}", f"{below} of {len(es)}"]
        print("| " + " | ".join(cells) + " |")


def print_tests(runs):
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
