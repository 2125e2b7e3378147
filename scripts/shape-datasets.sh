#!/usr/bin/env bash
# Differently shaped datasets for the stopping rule and the recipe (docs/results/recipe.md):
# few users with long histories, many users with short ones, the default shop, and a raw
# interaction log (CSV with timestamps, shuffled rows) taken through `ssi data ingest`.
#   scripts/shape-datasets.sh OUT_DIR
set -euo pipefail
out=${1:?OUT_DIR}
ssi=${SSI:-target/release/ssi}
mkdir -p "$out"
"$ssi" data synth --force --out "$out/shop.txt"
"$ssi" data synth --force --out "$out/long.txt" --users 1000 --categories 12 --products-per-category 16 \
    --min-len 50 --mean-extra-len 250 --max-len 900 --seed 7
"$ssi" data synth --force --out "$out/many.txt" --users 30000 --seed 9
python3 - "$out/shop.txt" "$out/raw.csv" <<'PY'
import random, sys
rows = []
for line in open(sys.argv[1]):
    user, *items = line.split()
    t = random.Random(int(user)).randint(1_600_000_000, 1_700_000_000)
    for i in items:
        t += random.Random(f"{user}-{i}-{t}").randint(60, 86_400)
        rows.append((f"u{user}", f"sku-{int(i):05d}", t))
random.Random(0).shuffle(rows)
with open(sys.argv[2], "w") as f:
    f.write("user,item,timestamp\n")
    f.writelines(f"{u},{i},{t}\n" for u, i, t in rows)
PY
"$ssi" data ingest "$out/raw.csv" --force --out "$out/ingested.txt" --user-col user --item-col item --time-col timestamp
