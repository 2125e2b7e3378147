#!/usr/bin/env python3
"""PyTorch quality reference for the training recipe (dev-only; never a runtime dependency).

Trains SASRec (`--model sasrec`) or BERT4Rec (`--model bert4rec`) to convergence under the
project's exact protocol (docs/protocol.md): leave-one-out split, training on every user's
training part (its last `--max-len` items), full-softmax cross-entropy at every position (SASRec)
or at the cloze-masked positions (BERT4Rec), validation NDCG@10 over 99 sampled negatives each epoch, the best epoch evaluated on the test
split with both protocols. Candidates come from `ssi data negatives` (the same 99 negatives per
user that `ssi` ranks), so both sides rank identical candidates; ties count against the target.

Writes `log.jsonl` (one line per epoch, the keys of `ssi train`'s log) and `test.json` (the keys
of `ssi eval --json`) into `--out`, and `last.pt` after every epoch: `--resume` continues from it
exactly as if never stopped (weights, Adam, both random states, the shuffled order, patience),
so a long run can be split over sittings.

    ssi data negatives --data D --split valid --out valid.neg
    ssi data negatives --data D --split test --out test.neg
    python bench/quality_ref.py --data D --valid-negatives valid.neg --test-negatives test.neg --out runs/ref
"""

import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_dataset(path):
    users, seqs = [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4:  # fewer than 3 items: not splittable (skipped by ssi too)
                continue
            users.append(int(parts[0]))
            seqs.append([int(x) for x in parts[1:]])
    n_items = max(max(s) for s in seqs)
    return users, seqs, n_items


def read_negatives(path):
    out = {}
    with open(path) as f:
        for line in f:
            parts = [int(x) for x in line.split()]
            out[parts[0]] = parts[1:]
    return out


class SasRec(nn.Module):
    """Pre-norm causal transformer, learned positions, embeddings x sqrt(d), final LayerNorm,
    output tied to the item embeddings, every weight matrix N(0, 0.02), no key-padding mask."""

    def __init__(self, n_items, hidden, layers, heads, max_len, dropout):
        super().__init__()
        self.emb = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.pos = nn.Embedding(max_len, hidden)
        layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.hidden, self.max_len = hidden, max_len
        self.register_buffer("causal", torch.triu(torch.ones(max_len, max_len, dtype=torch.bool), 1),
                             persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, ids):  # [B, L], left-padded: the last item at position max_len - 1
        b, l = ids.shape
        pos = torch.arange(self.max_len - l, self.max_len, device=ids.device).expand(b, l)
        x = self.drop(self.emb(ids) * math.sqrt(self.hidden) + self.pos(pos))
        return self.norm(self.enc(x, mask=self.causal[:l, :l], is_causal=True))

    def item_table(self):
        return self.emb.weight[1:]

    def scores(self, hist, dev):
        """Scores of every item (column j = item j + 1) after each history: [B, N]."""
        return self(left_pad(hist, self.max_len).to(dev))[:, -1] @ self.item_table().T

    def loss(self, batch, dev):
        ids = left_pad([s[:-1] for s in batch], self.max_len).to(dev)
        tgt = left_pad([s[1:] for s in batch], self.max_len).to(dev)
        h = self(ids)
        keep = tgt > 0
        return F.cross_entropy(h[keep] @ self.item_table().T, tgt[keep] - 1)


class Bert4Rec(nn.Module):
    """Ours (crates/ssi-models/src/bert4rec.rs): item + learned position embeddings, LayerNorm,
    dropout, a pre-norm bidirectional transformer with the key-padding mask, a head Linear ->
    GELU -> LayerNorm scored against the tied item embeddings plus a bias. Embeddings N(0, 0.02),
    the transformer's weights PyTorch's defaults. Ids: 0 padding, 1..N items, N + 1 [MASK].
    Training masks only the last item with probability `last_mask_prob`, else every item with
    probability `mask_prob` (at least one); prediction appends [MASK] to the last max_len - 1
    items and reads its state."""

    def __init__(self, n_items, hidden, layers, heads, max_len, dropout, mask_prob, last_mask_prob):
        super().__init__()
        self.emb = nn.Embedding(n_items + 2, hidden, padding_idx=0)
        self.pos = nn.Embedding(max_len, hidden)
        nn.init.normal_(self.emb.weight, 0.0, 0.02)
        nn.init.normal_(self.pos.weight, 0.0, 0.02)
        self.emb_norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(hidden, hidden)
        self.head_norm = nn.LayerNorm(hidden)
        self.bias = nn.Parameter(torch.zeros(n_items))
        self.n_items, self.max_len = n_items, max_len
        self.mask_prob, self.last_mask_prob = mask_prob, last_mask_prob

    def forward(self, ids):
        b, l = ids.shape
        pos = torch.arange(self.max_len - l, self.max_len, device=ids.device).expand(b, l)
        x = self.drop(self.emb_norm(self.emb(ids) + self.pos(pos)))
        return self.enc(x, src_key_padding_mask=ids == 0)

    def logits(self, h):
        return self.head_norm(F.gelu(self.head(h))) @ self.emb.weight[1:self.n_items + 1].T + self.bias

    def scores(self, hist, dev):
        mask = self.n_items + 1
        ids = left_pad([s[-(self.max_len - 1):] + [mask] for s in hist], self.max_len).to(dev)
        return self.logits(self(ids)[:, -1])

    def loss(self, batch, dev):
        ids = left_pad(batch, self.max_len)
        tgt = torch.zeros_like(ids)
        for r in range(ids.shape[0]):
            real = [p for p in range(self.max_len) if ids[r, p] > 0]
            if random.random() < self.last_mask_prob:
                masked = [real[-1]]
            else:
                masked = [p for p in real if random.random() < self.mask_prob] or [random.choice(real)]
            for p in masked:
                tgt[r, p] = ids[r, p]
                ids[r, p] = self.n_items + 1
        ids, tgt = ids.to(dev), tgt.to(dev)
        keep = tgt > 0
        return F.cross_entropy(self.logits(self(ids)[keep]), tgt[keep] - 1)


def left_pad(seqs, length):
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for i, s in enumerate(seqs):
        s = s[-length:]
        if s:
            out[i, length - len(s):] = s
    return torch.from_numpy(out)


def rank_metrics(ranks, prefix=""):
    ranks = np.asarray(ranks, dtype=np.float64)
    m = {}
    for k in (5, 10, 15, 20):
        hit = ranks < k
        m[f"{prefix}recall@{k}"] = float(hit.mean())
        m[f"{prefix}ndcg@{k}"] = float((hit / np.log2(ranks + 2)).mean())
    m[f"{prefix}mrr"] = float((1.0 / (ranks + 1)).mean())
    return m


@torch.no_grad()
def evaluate(model, seqs, users, negs, split, dev, full):
    model.eval()
    cut = 2 if split == "valid" else 1
    sampled, full_ranks = [], []
    order = list(range(len(seqs)))
    for start in range(0, len(order), 512):
        idx = order[start:start + 512]
        hist = [seqs[i][:-cut] for i in idx]
        target = [seqs[i][-cut] for i in idx]
        scores = model.scores(hist, dev).cpu()  # [B, N], column j = item j + 1
        for r, i in enumerate(idx):
            s = scores[r]
            t = s[target[r] - 1]
            cand = torch.tensor(negs[users[i]], dtype=torch.long) - 1
            sampled.append(int((s[cand] >= t).sum()))
            if full:
                s = s.clone()
                s[torch.tensor(sorted(set(hist[r])), dtype=torch.long) - 1] = -float("inf")
                s[target[r] - 1] = t
                full_ranks.append(int((s >= t).sum()) - 1)
    model.train()
    out = rank_metrics(sampled)
    if full:
        out.update(rank_metrics(full_ranks, "full_"))
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--valid-negatives", required=True)
    p.add_argument("--test-negatives", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--model", choices=["sasrec", "bert4rec"], default="sasrec")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--max-len", type=int, default=50)
    p.add_argument("--dropout", type=float, default=None,
                   help="default: ours for the model (SASRec 0.5, BERT4Rec 0.2)")
    p.add_argument("--mask-prob", type=float, default=0.6, help="BERT4Rec's cloze proportion")
    p.add_argument("--last-mask-prob", type=float, default=0.2,
                   help="BERT4Rec's share of sequences masking only their last item")
    p.add_argument("--all-windows", action="store_true",
                   help="as ours's all_windows (its default): also train on the earlier windows of a "
                        "history longer than max_len + 1 training items, stepping back max_len items, "
                        "so each item is a target once per epoch; without it one window per user")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--time-budget-minutes", type=float, default=None)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--test-only", action="store_true",
                   help="evaluate the saved best.pt of --out on the test split and stop")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last epoch (last.pt): weights, Adam, "
                        "both random states, patience and minutes, so it trains as if never stopped")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    users, seqs, n_items = read_dataset(args.data)
    vneg, tneg = read_negatives(args.valid_negatives), read_negatives(args.test_negatives)
    train = [s[:-2] for s in seqs]
    # Training windows (user, end): each user's last max_len + 1 training items, and with
    # --all-windows the earlier ones too (ours: `training_windows` in crates/ssi-train).
    trainable = []
    for i, s in enumerate(train):
        end = len(s)
        while end >= 2:
            trainable.append((i, end))
            if not args.all_windows:
                break
            end -= args.max_len
    dev = torch.device(args.device)
    if args.model == "sasrec":
        dropout = 0.5 if args.dropout is None else args.dropout
        model = SasRec(n_items, args.hidden, args.layers, args.heads, args.max_len, dropout)
    else:
        dropout = 0.2 if args.dropout is None else args.dropout
        model = Bert4Rec(n_items, args.hidden, args.layers, args.heads, args.max_len, dropout,
                         args.mask_prob, args.last_mask_prob)
    model = model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    os.makedirs(args.out, exist_ok=True)
    best, best_state, bad, started = -1.0, None, 0, time.time()
    first = 1
    # What the run's trajectory depends on; a resumed run must keep them (limits may change).
    run_args = {k: v for k, v in vars(args).items()
                if k not in ("epochs", "patience", "time_budget_minutes", "threads", "device",
                             "test_only", "resume", "out")}
    last_path = os.path.join(args.out, "last.pt")
    if args.test_only:
        saved = torch.load(os.path.join(args.out, "best.pt"), map_location=dev)
        best_state, best_epoch = saved["state"], saved["epoch"]
    elif args.resume:
        if not os.path.exists(last_path):
            p.error(f"--resume: {last_path} does not exist (a run checkpoints after each epoch)")
        ck = torch.load(last_path, map_location=dev, weights_only=False)
        saved = ck.get("args", run_args)  # checkpoints written before the check carry none
        # A setting added after the checkpoint was written reads as its default.
        was = {k: saved.get(k, p.get_default(k)) for k in run_args}
        changed = [f"--{k.replace('_', '-')} {was[k]} -> {v}" for k, v in run_args.items()
                   if was[k] != v]
        if changed:
            p.error(f"--resume: {last_path} was trained with other settings: {', '.join(changed)}")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        random.setstate(ck["py_random"])
        torch.set_rng_state(ck["torch_rng"])
        best, bad, best_epoch = ck["best"], ck["bad"], ck["best_epoch"]
        best_state = torch.load(os.path.join(args.out, "best.pt"), map_location=dev)["state"]
        trainable = ck["order"]  # shuffled in place each epoch: the next shuffle starts from it
        # Checkpoints written before windows hold user indices: their one window each.
        trainable = [(w, len(train[w])) if isinstance(w, int) else tuple(w) for w in trainable]
        first = ck["epoch"] + 1
        started = time.time() - ck["minutes"] * 60
        # Lines of epochs after the checkpoint (a cut-off epoch) would appear twice.
        with open(os.path.join(args.out, "log.jsonl")) as f:
            kept = [l for l in f if json.loads(l).get("epoch", 0) <= ck["epoch"]]
        with open(os.path.join(args.out, "log.jsonl"), "w") as f:
            f.writelines(kept)
        print(f"resuming after epoch {ck['epoch']} (best {best:.4f} at epoch {best_epoch})", flush=True)
    log = open(os.path.join(args.out, "log.jsonl"), "a" if args.test_only or args.resume else "w")
    stop = args.resume and bad >= args.patience  # a run that had already stopped: test only
    for epoch in range(first, 0 if args.test_only else args.epochs + 1):
        if stop:
            break
        random.shuffle(trainable)
        t0, loss_sum, steps = time.time(), 0.0, 0
        for start in range(0, len(trainable), args.batch):
            # SASRec: max_len inputs and their next items; BERT4Rec: the last max_len items.
            keep = args.max_len + 1 if args.model == "sasrec" else args.max_len
            batch = [train[i][max(0, end - keep):end] for i, end in trainable[start:start + args.batch]]
            loss = model.loss(batch, dev)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            steps += 1
        seconds = time.time() - t0
        v = evaluate(model, seqs, users, vneg, "valid", dev, full=False)
        is_best = v["ndcg@10"] > best
        if is_best:
            best, bad = v["ndcg@10"], 0
            best_state = {k: t.clone() for k, t in model.state_dict().items()}
            best_epoch = epoch
            # On disk too, so an interrupted run can still be tested (--test-only).
            torch.save({"state": best_state, "epoch": epoch}, os.path.join(args.out, "best.pt"))
        else:
            bad += 1
        line = {"epoch": epoch, "loss": loss_sum / steps, "steps": steps,
                "seqs_per_s": len(trainable) / seconds, "seconds": seconds,
                "valid_ndcg10": v["ndcg@10"], "valid_recall10": v["recall@10"], "best": is_best,
                "minutes": (time.time() - started) / 60}
        log.write(json.dumps(line) + "\n")
        log.flush()
        print(json.dumps(line), flush=True)
        ck = {"model": model.state_dict(), "optim": opt.state_dict(), "py_random": random.getstate(),
              "torch_rng": torch.get_rng_state(), "order": trainable, "epoch": epoch, "best": best, "bad": bad,
              "best_epoch": best_epoch, "minutes": line["minutes"], "args": run_args}
        torch.save(ck, last_path + ".tmp")
        os.replace(last_path + ".tmp", last_path)  # a run killed mid-write keeps the previous one
        stop = bad >= args.patience or bool(
            args.time_budget_minutes and time.time() - started > args.time_budget_minutes * 60)
    model.load_state_dict(best_state)
    test = evaluate(model, seqs, users, tneg, "test", dev, full=True)
    test.update({"model": f"{args.model}-pytorch", "dataset": os.path.basename(args.data), "split": "test",
                 "seed": args.seed, "negatives": 99, "users": len(seqs), "best_epoch": best_epoch,
                 "torch": torch.__version__, "device": str(dev)})
    with open(os.path.join(args.out, "test.json"), "w") as f:
        json.dump(test, f, indent=1)
    print(json.dumps(test))


if __name__ == "__main__":
    main()
