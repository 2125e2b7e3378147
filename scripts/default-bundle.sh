#!/usr/bin/env bash
# Rebuilds the bundle the browser app ships (public/models/shop-ssi-hgn/): `ssi quickstart` on
# the embedded synthetic shop (seed 42; teachers continued from a BERT4Rec run, HGN continued
# from its run alone while imitating them), its SSI-HGN student exported with 3,000 sequences
# to fine-tune on, and the native predictions the tests compare the page against.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p ssi-cli
SSI=${CARGO_TARGET_DIR:-target}/release/ssi
OUT=${OUT:-runs/default-bundle}
# Finished runs in $OUT are read back, not trained again.
"$SSI" quickstart --out "$OUT"
dest=public/models/shop-ssi-hgn
"$SSI" export --checkpoint "$OUT/ssi-hgn" --out "$dest" --name shop-ssi-hgn --sequences 3000 --force
# A fixed sequence and the native top 10: the browser tests must predict the same.
"$SSI" predict --bundle "$dest/bundle.ssib" --history 1,2,3,17 --top 10 --json > "$dest/check.json"
cat > public/models/index.json <<JSON
[
  {"name": "shop-ssi-hgn", "file": "models/shop-ssi-hgn/bundle.ssib",
   "description": "SSI-HGN (HGN imitating three consistency teachers), synthetic shop; scripts/default-bundle.sh"}
]
JSON
echo "wrote $dest"
