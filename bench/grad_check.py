#!/usr/bin/env python3
"""Writes the PyTorch side of the SASRec parity test (dev-only; never a runtime dependency).

The model is `quality_ref.py`'s `SasRec`, the reference our recipe is measured against, small
(30 items, hidden 8, 2 layers, 2 heads, max_len 6) and without dropout, so one batch has one
loss and one gradient. Its initial weights are written in our layout and with our parameter
names (burn's `Linear` stores W^T; PyTorch's `in_proj_weight` holds query, key and value; the
pre-norm layer's attention reads burn's `norm_2` and its feed-forward `norm_1`). Then three
batches of windows of 2..max_len+1 items, the loss and every gradient of the first step, the
loss of each step, the weights after three Adam steps (lr 1e-2, epsilon 1e-8, ours's SASRec
default), and the scores of every item after nine histories at inference with those weights. Computed in float64, so the test measures ours's float32 error against exact values.

`crates/ssi-models/tests/torch_parity.rs` loads the file into our SASRec and checks each figure.

    python bench/grad_check.py --out crates/ssi-models/tests/fixtures/sasrec-torch.json
"""

import argparse
import json
import os
import random
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality_ref import SasRec  # noqa: E402


def ours(model, layers, g=lambda t: t):
    """Our parameter name -> `g` of the PyTorch parameter (the tensor, or its .grad), as ours
    stores it."""
    d = model.hidden
    out = {
        "item_emb.weight": g(model.emb.weight),
        "pos_emb.weight": g(model.pos.weight),
        "norm.gamma": g(model.norm.weight),
        "norm.beta": g(model.norm.bias),
    }
    for i in range(layers):
        layer = model.enc.layers[i]
        p = f"encoder.layers.{i}."
        w, b = g(layer.self_attn.in_proj_weight), g(layer.self_attn.in_proj_bias)
        for k, name in enumerate(["query", "key", "value"]):
            out[p + f"mha.{name}.weight"] = w[k * d:(k + 1) * d].T
            out[p + f"mha.{name}.bias"] = b[k * d:(k + 1) * d]
        out[p + "mha.output.weight"] = g(layer.self_attn.out_proj.weight).T
        out[p + "mha.output.bias"] = g(layer.self_attn.out_proj.bias)
        out[p + "pwff.linear_inner.weight"] = g(layer.linear1.weight).T
        out[p + "pwff.linear_inner.bias"] = g(layer.linear1.bias)
        out[p + "pwff.linear_outer.weight"] = g(layer.linear2.weight).T
        out[p + "pwff.linear_outer.bias"] = g(layer.linear2.bias)
        # Pre-norm: PyTorch's norm1 is before attention, burn's norm_2 is.
        out[p + "norm_2.gamma"], out[p + "norm_2.beta"] = g(layer.norm1.weight), g(layer.norm1.bias)
        out[p + "norm_1.gamma"], out[p + "norm_1.beta"] = g(layer.norm2.weight), g(layer.norm2.bias)
    return out


def flat(t):
    # Nine significant digits: exact beyond float32, which ours computes in.
    return [float(f"{x:.9g}") for x in t.detach().contiguous().reshape(-1).tolist()]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    rnd = random.Random(args.seed)
    n_items, hidden, layers, heads, max_len = 30, 8, 2, 2, 6
    lr, eps, steps = 1e-2, 1e-8, 3
    torch.set_default_dtype(torch.float64)
    model = SasRec(n_items, hidden, layers, heads, max_len, 0.0)
    model.train()
    names = ours(model, layers)
    weights = {k: {"shape": list(v.shape), "data": flat(v)} for k, v in names.items()}
    # Windows of every length from 2 to max_len + 1 (the last one with no padding at all).
    batches = [[[rnd.randint(1, n_items) for _ in range(rnd.randint(2, max_len + 1))]
                for _ in range(5)] for _ in range(steps)]
    batches[0][0] = [rnd.randint(1, n_items) for _ in range(max_len + 1)]
    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=eps)
    losses, grads = [], None
    for batch in batches:
        opt.zero_grad()
        loss = model.loss(batch, "cpu")
        loss.backward()
        losses.append(loss.item())
        if grads is None:
            grads = {k: flat(v) for k, v in ours(model, layers, lambda t: t.grad).items()}
        opt.step()
    after = {k: flat(v) for k, v in ours(model, layers).items()}
    # Scores at inference (how validation ranks) of histories of 1 to 9 items: longer than
    # max_len ones are cut to their last max_len items.
    model.eval()
    histories = [[rnd.randint(1, n_items) for _ in range(n)] for n in range(1, 10)]
    with torch.no_grad():
        scores = flat(model.scores(histories, "cpu"))
    fixture = {
        "generated_by": f"python bench/grad_check.py --seed {args.seed}",
        "torch": torch.__version__,
        "config": {"n_items": n_items, "hidden": hidden, "layers": layers, "heads": heads,
                   "max_len": max_len, "lr": lr, "epsilon": eps},
        "weights": weights,
        "batches": batches,
        "losses": losses,
        "grads": grads,
        "after": after,
        "histories": histories,
        "scores": scores,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".tmp", "w") as f:
        json.dump(fixture, f)
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out}: losses {losses}")


if __name__ == "__main__":
    main()
