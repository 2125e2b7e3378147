#!/usr/bin/env bash
# The one prepared GPU session behind docs/results/gpu.md: `ssi bench` on wgpu against the PyTorch
# reference on CUDA (same shapes), then short Beauty runs on wgpu, side by side on the one GPU.
#
#   BIN=path/to/ssi (built with `--features wgpu`)  DATA=beauty.txt  OUT=folder  MIN=minutes
#   bash bench/gpu-session.sh
#
# Needs a Vulkan loader (libvulkan1) and the GPU's Vulkan driver; PyTorch with CUDA as `python3`.
set -u
BIN=${BIN:-target/release/ssi}
DATA=${DATA:-../shared/data/beauty.txt}
OUT=${OUT:-runs/gpu}
MIN=${MIN:-5}
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
} 2>&1 | tee "$OUT/machine.txt"

# 1. Throughput: every model, burn wgpu vs PyTorch CUDA, same shapes as the CPU bench.
timeout 240 "$BIN" bench --device wgpu --steps 5 --pytorch python3 2>&1 | tee "$OUT/bench-wgpu.txt"

# 2. Quality per epoch on wgpu: runs side by side (small models leave the GPU mostly idle).
run() {
    local name=$1
    shift
    "$BIN" train --data "$DATA" --config configs/small.json --device wgpu \
        --out "$RUNS/$name" --set time_budget_minutes="$MIN" "$@" >"$RUNS/$name.log" 2>&1
}
run sasrec-d05 --model sasrec --set dropout=0.5 &
run bert4rec-m06 --model bert4rec --set mask_prob=0.6 &
run bert4rec-m06-lr2 --model bert4rec --set mask_prob=0.6 --set lr=0.002 &
run bert4rec-m04-d01 --model bert4rec --set mask_prob=0.4 --set dropout=0.1 &
wait
(cd "$RUNS" && tar czf - ./*.log ./*/log.jsonl ./*/test.json ./*/config.json 2>/dev/null) >"$OUT/runs.tgz"
for f in "$RUNS"/*.log; do
    echo "== $f"
    tail -5 "$f"
done
