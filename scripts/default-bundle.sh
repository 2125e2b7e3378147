#!/usr/bin/env bash
# Rebuilds the bundle the browser app ships (public/models/shop-ssi-hgn/): three consistency
# teachers and an SSI HGN student trained by our CLI on the embedded synthetic shop (seed 42),
# then exported, with the native predictions the tests compare the page against.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p ssi-cli
SSI=${CARGO_TARGET_DIR:-target}/release/ssi
OUT=${OUT:-runs/default-bundle}
EPOCHS=${EPOCHS:-20}
common=(--config configs/small.json --epochs "$EPOCHS" --seed 42)
teachers=()
for task in temporal persona global; do
  dir=$OUT/teacher-$task
  [ -f "$dir/test.json" ] || "$SSI" pretrain --task "$task" "${common[@]}" --out "$dir" $( [ -d "$dir" ] && echo --resume )
  teachers+=("$dir")
done
student=$OUT/ssi-hgn
[ -f "$student/test.json" ] || "$SSI" distill --teachers "$(IFS=,; echo "${teachers[*]}")" --student hgn \
  "${common[@]}" --out "$student" $( [ -d "$student" ] && echo --resume )
dest=public/models/shop-ssi-hgn
"$SSI" export --checkpoint "$student" --out "$dest" --name shop-ssi-hgn --sequences 3000 --force
# A fixed sequence and the native top 10: the browser tests must predict the same.
"$SSI" predict --bundle "$dest/bundle.ssib" --history 1,2,3,17 --top 10 --json > "$dest/check.json"
cat > public/models/index.json <<JSON
[
  {"name": "shop-ssi-hgn", "file": "models/shop-ssi-hgn/bundle.ssib",
   "description": "SSI (HGN student of three consistency teachers), synthetic shop; scripts/default-bundle.sh"}
]
JSON
echo "wrote $dest"
