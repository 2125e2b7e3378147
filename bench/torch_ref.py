#!/usr/bin/env python3
"""PyTorch reference for `ssi bench --pytorch PYTHON`: the same models, shapes and training step
(Adam, full-softmax cross-entropy over all items, output layer tied to the item embedding) as
the burn models in crates/ssi-models, timed the same way (`--warmup` untimed steps, then `--steps`).

Prints one JSON list of {"model", "train_ms_per_step"} on stdout. `--device cpu` (all cores) or
`--device cuda` (timed with a synchronise after every step, as burn's side does).
"""

import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SasRec(nn.Module):
    """Causal pre-LN transformer, learned positions, tied output (crates/ssi-models/src/sasrec.rs)."""

    def __init__(self, n, h, layers, heads, max_len, causal=True, mask_token=False):
        super().__init__()
        self.emb = nn.Embedding(n + 2, h, padding_idx=0)
        self.pos = nn.Embedding(max_len, h)
        self.register_buffer("positions", torch.arange(max_len), persistent=False)
        self.register_buffer("causal_mask", torch.triu(torch.ones(max_len, max_len, dtype=torch.bool), 1), persistent=False)
        layer = nn.TransformerEncoderLayer(h, heads, 4 * h, 0.2, activation="gelu", batch_first=True, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(h)
        self.bias = nn.Parameter(torch.zeros(n + 2))
        self.causal = causal
        self.h = h

    def forward(self, ids):
        b, l = ids.shape
        x = self.emb(ids) * math.sqrt(self.h) + self.pos(self.positions[:l].expand(b, l))
        mask = self.causal_mask[:l, :l] if self.causal else None
        return self.norm(self.enc(x, mask=mask, src_key_padding_mask=ids == 0, is_causal=self.causal))

    def logits(self, hidden):
        return hidden @ self.emb.weight.T + self.bias


class Gru4Rec(nn.Module):
    def __init__(self, n, h):
        super().__init__()
        self.emb = nn.Embedding(n + 1, h, padding_idx=0)
        self.gru = nn.GRU(h, h, batch_first=True)
        self.bias = nn.Parameter(torch.zeros(n + 1))

    def forward(self, ids):
        out, _ = self.gru(self.emb(ids))
        return out

    def logits(self, hidden):
        return hidden @ self.emb.weight.T + self.bias


class Hgn(nn.Module):
    """Feature gating, instance gating, item-item product over a window of 5, user term."""

    def __init__(self, n, users, h, window=5):
        super().__init__()
        self.item = nn.Embedding(n + 1, h, padding_idx=0)
        self.user = nn.Embedding(users + 1, h)
        self.out = nn.Embedding(n + 1, h)
        self.bias = nn.Parameter(torch.zeros(n + 1))
        self.f1, self.f2 = nn.Linear(h, h, bias=False), nn.Linear(h, h)
        self.i1, self.i2 = nn.Linear(h, 1, bias=False), nn.Linear(h, window)
        self.window = window

    def forward(self, windows, users):  # windows [P, W], users [P]
        e, u = self.item(windows), self.user(users)
        gate = torch.sigmoid(self.f1(e) + self.f2(u).unsqueeze(1))
        g = e * gate
        inst = torch.sigmoid(self.i1(g).squeeze(-1) + self.i2(u))
        pooled = (g * inst.unsqueeze(-1)).sum(1) / inst.sum(1, keepdim=True).clamp_min(1e-6)
        return u + pooled + e.sum(1)

    def logits(self, hidden):
        return hidden @ self.out.weight.T + self.bias


def step_fn(kind, args, model, seqs, users):
    n = args.items
    if kind in ("sasrec", "gru4rec"):
        inp, tgt = seqs[:, :-1], seqs[:, 1:]
        return lambda: F.cross_entropy(model.logits(model(inp)).reshape(-1, model.bias.numel()), tgt.reshape(-1))
    if kind == "bert4rec":
        inp = seqs[:, 1:]

        def loss():
            masked = torch.rand(inp.shape, device=inp.device) < args.mask_prob
            ids = inp.masked_fill(masked, n + 1)
            hidden = model(ids)[masked]
            return F.cross_entropy(model.logits(hidden), inp[masked])

        return loss
    if kind == "hgn":
        w = 5
        pad = F.pad(seqs[:, :-1], (w - 1, 0))
        windows = pad.unfold(1, w, 1).reshape(-1, w)  # every position's last 5 items
        tgt = seqs[:, 1:].reshape(-1)
        u = users.repeat_interleave(args.len)
        return lambda: F.cross_entropy(model.logits(model(windows, u)), tgt)
    raise SystemExit(f"unknown model {kind}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="sasrec,bert4rec,gru4rec,hgn")
    p.add_argument("--items", type=int, default=12101)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--len", type=int, default=50)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--mask-prob", type=float, default=0.6)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    dev = torch.device(args.device)
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(1)
    seqs = torch.randint(1, args.items + 1, (args.batch, args.len + 1), device=dev)
    users = torch.arange(1, args.batch + 1, device=dev)
    rows = []
    for kind in args.models.split(","):
        if kind in ("sasrec", "bert4rec"):
            model = SasRec(args.items, args.hidden, 2, 2, args.len, causal=kind == "sasrec")
        elif kind == "gru4rec":
            model = Gru4Rec(args.items, args.hidden)
        else:
            model = Hgn(args.items, args.batch, args.hidden)
        model = model.to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = step_fn(kind, args, model, seqs, users)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn()
            loss.backward()
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()

        for _ in range(max(args.warmup, 1)):
            step()
        t = time.perf_counter()
        for _ in range(args.steps):
            step()
        ms = (time.perf_counter() - t) * 1000 / args.steps
        rows.append({"model": kind, "train_ms_per_step": ms, "threads": torch.get_num_threads(), "device": str(dev), "torch": torch.__version__})
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
