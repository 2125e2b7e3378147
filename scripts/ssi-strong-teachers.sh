#!/usr/bin/env bash
# SSI on strong teachers (docs/results/ssi-sasrec-teachers.md), the same for every dataset:
# three SASRec teachers continue a converged SASRec run, each with one consistency task; from
# that run's weights, SASRec continues alone (the same-run reference, another seed) and SSI-SASRec
# continues imitating the teachers (the `best` preset's imitation options); HGN is trained alone
# to its stopping rule, and from its best weights HGN continues alone and SSI-HGN imitating the
# teachers. Every run stops by its rule.
#
#   bash scripts/ssi-strong-teachers.sh DATA SASREC_RUN OUT [TEACHER_EPOCHS]
#
# DATA: a dataset file; SASREC_RUN: a SASRec run on it trained to its rule; OUT: the folder of
# the runs. Finished runs are kept and skipped, so a cut-off pass continues where it stopped.
# Uses `ssi` from PATH (SSI=path to override) and one core per run (RAYON_NUM_THREADS=1).
set -euo pipefail
config="$(cd "$(dirname "$0")/.." && pwd)/configs/small.json"
[ $# -ge 3 ] || { echo "usage: $0 DATA SASREC_RUN OUT [TEACHER_EPOCHS]" >&2; exit 2; }
data=$1 start=$2 out=$3 teacher_epochs=${4:-15}
ssi=${SSI:-ssi}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
[ -f "$data" ] || { echo "no dataset file $data" >&2; exit 1; }
[ -f "$start/test.json" ] || { echo "$start is not a finished run (no test.json)" >&2; exit 1; }
mkdir -p "$out"
common=(--data "$data" --config "$config")

# Runs a step unless its folder holds a finished run; an unfinished one resumes.
step() {
  local name=$1; shift
  if [ -f "$out/$name/test.json" ] && grep -q '"finished": true' "$out/$name/state.json" 2>/dev/null; then
    echo "== $name: finished, kept"; return
  fi
  local args=("$@")
  if [ -f "$out/$name/state.json" ]; then
    # A resumed run keeps its start (`--init` and `--resume` do not go together).
    args=()
    while [ $# -gt 0 ]; do
      if [ "$1" = --init ]; then shift 2; else args+=("$1"); shift; fi
    done
    args+=(--resume)
  fi
  echo "== $name ($(date +%T))"
  if ! "$ssi" "${args[@]}" --out "$out/$name" >> "$out/$name.log" 2>&1; then
    tail -n 5 "$out/$name.log"; echo "== $name failed: see $out/$name.log" >&2; exit 1
  fi
  tail -n 8 "$out/$name.log"
}

seed=1
for task in temporal persona global; do
  step "teacher-$task" train --model sasrec "${common[@]}" --set consistency=$task --seed $seed \
    --init "$start" --epochs "$teacher_epochs"
  seed=$((seed + 1))
done
teachers="$out/teacher-temporal,$out/teacher-persona,$out/teacher-global"
imitate=(--teachers "$teachers" --teacher-full-history --imitation-points next --temperature 4)
step sasrec-cont train --model sasrec "${common[@]}" --seed 2 --init "$start"
step ssi-sasrec distill --student sasrec "${imitate[@]}" --init "$start" "${common[@]}"
step hgn train --model hgn "${common[@]}"
step hgn-cont train --model hgn "${common[@]}" --seed 2 --init "$out/hgn"
step ssi-hgn distill --student hgn "${imitate[@]}" --init "$out/hgn" "${common[@]}"
echo "== done: ssi report $out/* (or a folder of links to them) puts the rows on the results page"
