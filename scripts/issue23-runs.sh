#!/usr/bin/env bash
# The runs issue 23's table still lacks, each a named step, in the order that fills rows soonest
# (run folders do not outlive their machine, so each step trains its own teachers; a cut-off step
# continues where it stopped, finished stages are read back):
#   beauty-faithful   Beauty faithful SSI-HGN, Table 3, Figure 3 (on the page: not run by default)
#   t4                SSI-HGN with the faithful settings but T = 4, beside the faithful SSI-HGN of
#                     Beauty and Toys, same teachers (docs/results/ssi-beauty-faithful.md; on the
#                     page: not run by default); a folder without its teachers is skipped
#   beauty-students   Beauty's faithful SASRec student, with SASRec alone
#   toys-students     Toys' faithful SASRec and GRU4Rec students, with their models alone
#                     (both in `*-faithful-2`: the archived rows of `*-faithful` name other
#                     teachers, trained on an earlier machine)
#   toys-best         the best preset's SSI-HGN and SSI-GRU4Rec on Toys (SASRec teachers)
#   beauty-best       the best preset's SSI-GRU4Rec on Beauty
#   sports-best       the best preset's SSI-GRU4Rec on Sports
#   figure4           Figure 4 on Beauty: BERT4Rec, its teachers and SSI-HGN at 1, 2, 4, 8 layers
#   figure4-toys      the same on Toys
#   beauty-scratch    the best preset on Beauty with teachers trained from scratch, each with a
#                     seed of its own (`--teachers-from-scratch`): an independent committee was
#                     +0.0026 full on Toys where the continuing teachers gave +0.0006; SSI-SASRec
#                     and its reference (not run by default)
# Three stages at once, one core-thread each (2-core machine: the three teachers share the
# cores; two at a time lose more to idle waits on their teachers).
#
#   bash scripts/issue23-runs.sh                    # the steps whose rows are missing, from
#                                                   # beauty-students on; `ssi` from PATH, SSI=
#                                                   # overrides
#   bash scripts/issue23-runs.sh beauty-best t4     # only these steps, in this order
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
    if [ ! -f "$f/teacher-global/test.json" ]; then
        echo "== $f has no finished teachers: no SSI-HGN at T = 4 there"
        return
    fi
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
best=(--preset best --teacher-model sasrec --baselines)
step() {
    case $1 in
    beauty-faithful)
        run --data "$(data beauty)" --ablation imitation,teachers --baselines hgn --students hgn \
            --out runs/beauty-faithful ;;
    t4)
        t4 runs/beauty-faithful "$(data beauty)"
        t4 runs/toys-faithful "$(data toys)" ;;
    beauty-students)
        # SASRec only: the folder's SSI-GRU4Rec was cut by hand (`ssi distill --resume --epochs
        # 62`), so a command naming it no longer reads it back.
        run --data "$(data beauty)" --baselines sasrec --students sasrec \
            --out runs/beauty-faithful-2 ;;
    toys-students)
        run --data "$(data toys)" --baselines sasrec,gru4rec --students sasrec,gru4rec \
            --out runs/toys-faithful-2 ;;
    toys-best)
        run --data "$(data toys)" "${best[@]}" --students hgn,gru4rec --out runs/toys-best ;;
    beauty-best)
        run --data "$(data beauty)" "${best[@]}" --students gru4rec --out runs/beauty-best ;;
    sports-best)
        # A folder of its own: `sports-best`'s archived rows (SSI-SASRec 0.3611) came from another
        # binary.
        run --data "$(data sports)" "${best[@]}" --students gru4rec --out runs/sports-best-2 ;;
    figure4)
        run --data "$(data beauty)" --ablation layers --baselines --students \
            --out runs/beauty-faithful-2 ;;
    figure4-toys)
        run --data "$(data toys)" --ablation layers --baselines --students \
            --out runs/toys-faithful-2 ;;
    beauty-scratch)
        run --data "$(data beauty)" "${best[@]}" --teachers-from-scratch --students sasrec \
            --out runs/beauty-scratch ;;
    *)
        echo "unknown step '$1' (see the list at the top of $0)" >&2
        exit 2 ;;
    esac
}
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(beauty-students toys-students toys-best beauty-best sports-best
    figure4 figure4-toys)
for s in "${steps[@]}"; do
    # Names first: a typo in the last step should not wait for hours of the first.
    case $s in
    beauty-faithful | t4 | beauty-students | toys-students | toys-best | beauty-best | sports-best | figure4 | figure4-toys | beauty-scratch) ;;
    *) echo "unknown step '$s' (see the list at the top of $0)" >&2; exit 2 ;;
    esac
done
for s in "${steps[@]}"; do step "$s"; done
echo "== $(date -u '+%F %T') done"
