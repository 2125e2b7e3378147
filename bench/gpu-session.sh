#!/usr/bin/env bash
# The one prepared GPU session behind docs/results/gpu.md: `ssi bench` on wgpu against the PyTorch
# reference on CUDA (same shapes; BERT4Rec also with exact shapes, to measure bucketing), then
# time to quality on one dataset: our SASRec on wgpu (bucketed and exact shapes) and the PyTorch
# quality reference (bench/quality_ref.py) on CUDA, side by side on the one GPU, MIN minutes each.
#
#   BIN=path/to/ssi (built with `--features wgpu`)  DATA=beauty.txt  OUT=folder  MIN=minutes
#   bash bench/gpu-session.sh
#
# Needs a Vulkan loader (libvulkan1) and the GPU's Vulkan driver; PyTorch with CUDA as `python3`.
set -u
BIN=${BIN:-target/release/ssi}
DATA=${DATA:-../shared/data/beauty.txt}
OUT=${OUT:-runs/gpu}
MIN=${MIN:-4}
PY=${PY:-python3}
mkdir -p "$OUT"
RUNS=$(mktemp -d)

if ! ls /usr/share/vulkan/icd.d/*nvidia* /etc/vulkan/icd.d/*nvidia* >/dev/null 2>&1 &&
    [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    nproc
    "$BIN" --version
    "$PY" -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
} 2>&1 | tee "$OUT/machine.txt"

# 0. Stop at once when wgpu finds no GPU (the rest would only burn the machine's time).
if ! timeout 90 "$BIN" bench --device wgpu --models sasrec --items 100 --batch 4 --len 5 --steps 1 \
    >"$OUT/smoke.txt" 2>&1; then
    cat "$OUT/smoke.txt"
    exit 1
fi

# 1. Throughput: every model, burn wgpu vs PyTorch CUDA, same shapes, after 5 warm-up steps.
timeout 180 "$BIN" bench --device wgpu --steps 20 --warmup 5 --pytorch "$PY" 2>&1 |
    tee "$OUT/bench-wgpu.txt"
# BERT4Rec's number of masked rows changes every step: exact shapes against the default buckets.
timeout 80 "$BIN" bench --device wgpu --models bert4rec --shapes exact --steps 20 --warmup 5 2>&1 |
    tee "$OUT/bench-wgpu-exact.txt"

# 2. Time to quality: validation NDCG@10 per epoch and per minute, same protocol and candidates.
for split in valid test; do
    "$BIN" data negatives --data "$DATA" --split "$split" --out "$RUNS/$split.neg" >/dev/null
done
"$BIN" train --model sasrec --data "$DATA" --device wgpu --out "$RUNS/ours" \
    --set time_budget_minutes="$MIN" >"$RUNS/ours.log" 2>&1 &
"$BIN" train --model sasrec --data "$DATA" --device wgpu --shapes exact --out "$RUNS/ours-exact" \
    --set time_budget_minutes="$MIN" >"$RUNS/ours-exact.log" 2>&1 &
"$PY" bench/quality_ref.py --data "$DATA" --valid-negatives "$RUNS/valid.neg" \
    --test-negatives "$RUNS/test.neg" --out "$RUNS/pytorch" --device cuda --threads 4 \
    --time-budget-minutes "$MIN" >"$RUNS/pytorch.log" 2>&1 &
wait
(cd "$RUNS" && tar czf - ./*.log ./*/log.jsonl ./*/test.json ./*/config.json 2>/dev/null) >"$OUT/runs.tgz"
for f in "$RUNS"/*.log; do
    echo "== $f"
    tail -4 "$f"
done
