#!/usr/bin/env bash
# Runs every command of README.md and web/README.md as written, in a fresh clone of this
# repository's HEAD, in order, and stops at the first that fails. The README's first two commands
# (quickstart, test suite) come first; `trunk serve` is checked by fetching the page, then stopped.
#
#   bash scripts/check-docs.sh [--skip-first-two | --from N] [--work DIR]
#
# --from N starts at the Nth command (the set-up still runs), to finish a pass that was cut off.
# --work DIR keeps the pass in DIR; given a DIR of an earlier pass whose set-up ended (its clone,
# runs and installed `ssi` are there), it continues in that clone without cloning or setting up
# again: with --from N, a pass cut off at command N resumes there (remove what command N had
# written first: most commands refuse to replace a run).
# Set-up that stands in for the user (printed as it happens): `log.csv` is the synthetic shop
# written as a CSV log (the "your data" of the README); `ssi data fetch` uses $SSI_CACHE, seeded
# from ../shared/data/beauty.txt when that file exists (its checksum is still verified), else it
# downloads. CARGO_TARGET_DIR is shared with this checkout's target/ so nothing builds twice.
# Takes about 4 hours on 2 cores (docs/results/check-docs.md): the README trains about twenty
# models on the CSV log, each until its stopping rule or 200 epochs; split it over sittings with
# --work and --from.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
skip=0
work=""
usage="usage: $0 [--skip-first-two | --from N] [--work DIR]"
while [ $# -gt 0 ]; do
  case "$1" in
    --skip-first-two) skip=2; shift ;;
    --from)
      [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "--from needs a command number (1, 2, ...)" >&2; exit 2; }
      skip=$(( $2 - 1 )); shift 2 ;;
    --work)
      [ -n "${2:-}" ] || { echo "--work needs a folder" >&2; exit 2; }
      work="$2"; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
if [ -z "$work" ]; then
  work=$(mktemp -d /tmp/ssi-docs.XXXXXX)
else
  mkdir -p "$work"
  work="$(cd "$work" && pwd)"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
export CARGO_INSTALL_ROOT="$work/cargo-root"
export PATH="$CARGO_INSTALL_ROOT/bin:$HOME/.cargo/bin:$PATH"
export SSI_CACHE="$work/cache"
if [ -f "$work/.setup-done" ]; then
  cd "$work/clone"
  echo "== continuing the pass in $work/clone ($(git rev-parse --short HEAD)), from command $((skip + 1))"
else
  rm -rf "$work/clone"  # a set-up cut off before it ended starts over
  git clone -q "$repo" "$work/clone"
  cd "$work/clone"
  echo "== fresh clone of $(git rev-parse --short HEAD) in $work/clone"

  mkdir -p "$SSI_CACHE"
  if [ -f "$repo/../shared/data/beauty.txt" ]; then
    cp "$repo/../shared/data/beauty.txt" "$SSI_CACHE/beauty.txt"
    echo "== set-up: $SSI_CACHE/beauty.txt seeded from ../shared/data (fetch verifies its checksum)"
  fi
  # The user's log: the synthetic shop as user,item,ts rows (one timestamp per position).
  cargo run -q --release -p ssi-cli --bin ssi -- data synth --out "$work/shop.txt" --users 2000
  awk 'BEGIN { print "user,item,ts" } { for (i = 2; i <= NF; i++) printf "u%s,p%s,%d\n", $1, $i, 1000 * i + NR }' \
    "$work/shop.txt" > log.csv
  echo "== set-up: log.csv ($(($(wc -l < log.csv) - 1)) interactions) stands for the user's log"
  touch "$work/.setup-done"
fi

n=0
python3 scripts/doc-commands.py README.md web/README.md | while IFS= read -r -d "" cmd; do
  n=$((n + 1))
  [ "$n" -le "$skip" ] && continue
  start=$SECONDS
  echo
  echo "== [$n] $cmd"
  if [[ "$cmd" == *"trunk serve"* ]]; then
    # A server: it passes when it serves the page; then it is stopped.
    setsid bash -c "$cmd" > "$work/serve.log" 2>&1 < /dev/null &
    pid=$!
    ok=0
    for _ in $(seq 1 1200); do
      if curl -fsS http://127.0.0.1:8080/ 2>/dev/null | grep -q "<title>SSI"; then ok=1; break; fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    kill -- -"$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "$ok" != 1 ]; then tail -n 30 "$work/serve.log"; echo "== FAILED: [$n] $cmd"; exit 1; fi
  elif ! bash -euo pipefail -c "$cmd" < /dev/null; then
    echo "== FAILED: [$n] $cmd"
    exit 1
  fi
  echo "== [$n] ok in $((SECONDS - start)) s"
done
echo
echo "== every documented command ran (clone left in $work/clone)"
