#!/usr/bin/env bash
# The runs issue 23's table still lacks, in the order that fills rows soonest, each resumable (a
# cut-off pass continues where it stopped; finished stages are read back): Beauty faithful
# (SSI-HGN, Table 3, Figure 3), SSI-HGN with the faithful settings but T = 4 beside the faithful
# SSI-HGN of Beauty and Toys (same teachers: why eq. 5 costs the student,
# docs/results/ssi-beauty-faithful.md), Beauty's faithful SASRec and GRU4Rec students, Toys'
# faithful SASRec and GRU4Rec students, then the best preset's missing students (SSI-HGN and SSI-GRU4Rec on Toys,
# SSI-GRU4Rec on Beauty and Sports, with SASRec teachers as in the best-preset rows), then
# Figure 4 on Beauty.
# Three stages at once, one core-thread each (2-core machine: the three teachers share the
# cores; two at a time lose more to idle waits on their teachers).
#
#   bash scripts/issue23-runs.sh            # uses `ssi` from PATH, SSI=path to override
#
# Progress: each --out folder's stage logs; rows: docs/results (`ssi report`, after each step).
set -uo pipefail
cd "$(dirname "$0")/.."
ssi=${SSI:-ssi}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}
report() {
    # The results page after every step: run folders do not outlive their machine.
    "$ssi" report runs --out docs/results || echo "== report failed"
}
run() {
    echo "== $(date -u '+%F %T') ssi reproduce $*"
    "$ssi" reproduce --jobs 3 "$@" || echo "== failed: $*"
    report
}
# SSI-HGN of a faithful folder again with T = 4 (`ssi reproduce --temperature 4` would train its
# own teachers: its stage is named like the faithful one), the folder's teachers and seed, so that
# the results page compares it with the folder's HGN alone.
t4() {
    local f=$1 out=$1/ssi-hgn-t4
    echo "== $(date -u '+%F %T') ssi distill --temperature 4 --out $out"
    if [ -f "$out/state.json" ]; then
        "$ssi" distill --resume --out "$out" || echo "== failed: $out"
    else
        "$ssi" distill --teachers "$f/teacher-temporal,$f/teacher-persona,$f/teacher-global" \
            --student hgn --data "$2" --temperature 4 --out "$out" || echo "== failed: $out"
    fi
    report
}
data() {
    local f=../shared/data/$1.txt
    [ -f "$f" ] || { echo "no dataset file $f" >&2; exit 1; }
    echo "$f"
}
d=$(data beauty) || exit 1
run --data "$d" --ablation imitation,teachers --baselines hgn --students hgn --out runs/beauty-faithful
t4 runs/beauty-faithful "$d"
# Toys' HGN students, Table 3 and Figure 3 are on the results page (2026-12-05).
t4 runs/toys-faithful "$(data toys)"
run --data "$d" --ablation imitation,teachers --baselines hgn,sasrec,gru4rec \
    --students hgn,sasrec,gru4rec --out runs/beauty-faithful
run --data "$(data toys)" --baselines sasrec,gru4rec --students sasrec,gru4rec --out runs/toys-faithful
best=(--preset best --teacher-model sasrec --baselines)
run --data "$(data toys)" "${best[@]}" --students hgn,gru4rec --out runs/toys-best
run --data "$(data beauty)" "${best[@]}" --students gru4rec --out runs/beauty-best
# A folder of its own: `sports-best`'s archived rows (SSI-SASRec 0.3611) came from another binary.
run --data "$(data sports)" "${best[@]}" --students gru4rec --out runs/sports-best-2
# Figure 4 (the paper's is on Beauty): BERT4Rec, its three teachers and SSI-HGN at 1, 4 and 8 layers.
run --data "$(data beauty)" --ablation layers --baselines --students --out runs/beauty-faithful
echo "== $(date -u '+%F %T') done"
