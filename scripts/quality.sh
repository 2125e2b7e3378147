#!/usr/bin/env bash
# Our SASRec against the PyTorch quality reference (bench/quality_ref.py) on one dataset, under the
# same protocol and the same sampled candidates; prints validation NDCG@10 per epoch and per
# training minute side by side, then both protocols' test figures.
#   scripts/quality.sh DATA.txt OUT_DIR [PYTHON] [-- extra `ssi train` arguments]
# PYTHON: an interpreter with torch (dev-only; e.g. `python3 -m venv .venv && .venv/bin/pip install torch`).
set -euo pipefail
data=${1:?DATA} out=${2:?OUT_DIR}
shift 2
py=.venv/bin/python
if [ $# -gt 0 ] && [ "$1" != "--" ]; then py=$1; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi
ssi=${SSI:-target/release/ssi}
mkdir -p "$out"
for split in valid test; do
    [ -f "$out/$split.neg" ] || "$ssi" data negatives --data "$data" --split "$split" --out "$out/$split.neg"
done
"$ssi" train --model sasrec --data "$data" --out "$out/ssi-sasrec" "$@"
"$py" bench/quality_ref.py --data "$data" --valid-negatives "$out/valid.neg" \
    --test-negatives "$out/test.neg" --out "$out/pytorch-sasrec"
python3 scripts/quality-compare.py "ours=$out/ssi-sasrec" "pytorch=$out/pytorch-sasrec"
