#!/usr/bin/env bash
# The GPU recipe: three larger teachers trained side by side on one GPU, then the default-size
# student distilled from their averaged ten-view soft targets. Sized for one H200 in <= 9 minutes
# (the device tool lends ~15 minutes in all); results land in $OUT (at most 8 files < 16 MB).
#
# On the device machine, from the repository root (the tarball carried in .gpu/, which
# .git/info/exclude ignores):
#     bash recipes/gpu.sh .gpu/fer2013.tar.gz
# A CPU dry run with tiny settings (minutes; checks every step and file name):
#     DEVICE=cpu EPOCHS_T=1 EPOCHS_S1=1 EPOCHS_S=4 DEADLINE=100000 TTA=none OUT=/tmp/gpu-dry bash recipes/gpu.sh \
#         ../shared/datasets/fer2013-sample.csv
#
# Settings (environment): DEVICE (cuda), EPOCHS_T (30) teacher epochs, EPOCHS_S (150) student
# epochs at most, EPOCHS_S1 (10) student epochs of its first run, BATCH_T (512), BATCH_S (256),
# BUDGET_T (330 s: teachers still running then are stopped and the student learns from those
# that finished), DEADLINE (540 s from the start: everything is in $OUT by then; keep it under
# the device call's timeout), TTA (multicrop: teacher views per face, as --distill-tta; augmented:
# the teachers judge every augmented batch, a forward pass each per step), OUT ($OUT, else
# ./gpu-out).
#
# Nobody knows in advance how fast the student trains on the lent GPU, so it trains twice: a
# short first run (EPOCHS_S1, a whole one-cycle schedule: a finished model in $OUT early), then
# the same run extended with `train --resume RUN --epochs N` to as many epochs as its measured
# seconds per epoch fit before DEADLINE (at most EPOCHS_S; the teachers' targets are reused). If
# the extension is cut short, the first run's model stays in $OUT.
set -uo pipefail
# Paths given relative to where it is started from (the data, OUT) still work after the cd.
: "${1:?usage: recipes/gpu.sh FER2013.tar.gz|fer2013.csv}"
DATA_IN=$(realpath -m -- "$1")
[ -z "${OUT:-}" ] || OUT=$(realpath -m -- "$OUT")
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
EPOCHS_T=${EPOCHS_T:-30}
EPOCHS_S=${EPOCHS_S:-150}
EPOCHS_S1=${EPOCHS_S1:-10}
DEADLINE=${DEADLINE:-540}
BATCH_T=${BATCH_T:-512}
BATCH_S=${BATCH_S:-256}
BUDGET_T=${BUDGET_T:-330}
TTA=${TTA:-multicrop}
OUT=${OUT:-$PWD/gpu-out}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT   # the extracted data, cache and runs; what is kept is in $OUT
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export EMOTISCOPE_CACHE=$WORK/cache
mkdir -p "$OUT"
log() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$OUT/recipe.log"; }

if [[ $DATA_IN == *.tar.gz ]]; then
    tar -xzf "$DATA_IN" -C "$WORK" && DATA=$WORK/fer2013
else
    DATA=$DATA_IN
fi
log "data $DATA on $DEVICE; teachers $EPOCHS_T epochs (budget ${BUDGET_T}s), student up to $EPOCHS_S epochs by ${DEADLINE}s"
train() { python3 -m emotiscope train "$DATA" --device "$DEVICE" --val-fraction 0.05 --out "$WORK/runs" "$@"; }
# A teacher still running at the budget is stopped (SIGTERM); its best.pt of the epochs it
# finished is still a teacher.
teacher() { timeout -s TERM "$BUDGET_T" python3 -m emotiscope train "$DATA" --device "$DEVICE" \
    --val-fraction 0.05 --out "$WORK/runs" "$@"; }

# Three different teachers at once: small 48 px networks leave an H200 mostly idle one at a time.
# SGD's peak learning rate grows with the batch (0.1 at 128 -> 0.2 at 512).
common=(--epochs "$EPOCHS_T" --batch-size "$BATCH_T" --lr 0.2 --ema 0.999)
teacher "${common[@]}" --arch resnet --seed 1 --name t-resnet18 >"$WORK/t1.log" 2>&1 &
teacher "${common[@]}" --arch resnet --widths 48,96,192,384 --depths 1,2,3,2 --seed 2 \
    --name t-resnet-narrow >"$WORK/t2.log" 2>&1 &
teacher "${common[@]}" --arch compact --widths 64,128,256,384 --depths 2,2,2,2 --seed 3 \
    --name t-vgg >"$WORK/t3.log" 2>&1 &
wait
for f in "$WORK"/t*.log; do tail -n 3 "$f" | tr '\r' '\n' | grep -a "epoch\|error" | tail -n 1 | tee -a "$OUT/recipe.log"; done

# A teacher killed by the budget still has its best.pt from the epochs it finished.
best=$(ls "$WORK"/runs/*/best.pt 2>/dev/null | paste -sd, -)
[ -n "$best" ] || { log "no teacher finished an epoch"; cp "$WORK"/t1.log "$OUT/"; exit 1; }
log "teachers: $best"
for run in "$WORK"/runs/*-t-*; do
    [ -f "$run/report.json" ] && cp "$run/report.json" "$OUT/$(basename "$run" | sed 's/^[0-9-]*//')-report.json"
done

filter() { tr '\r' '\n' | grep -a "teacher\|agree\|epoch [0-9]*/[0-9]*  \|run \|resum\|error" | tee -a "$OUT/recipe.log"; }
train --widths 40,80,160,240 --depths 1,2,2,2 --distill "$best" --distill-tta "$TTA" \
    --distill-weight 0.7 --ema 0.999 --epochs "$EPOCHS_S1" --batch-size "$BATCH_S" --lr 0.15 \
    --augment blur=0.15,lowres=0.15,dark=0.1,jpeg=0.15 --name student 2>&1 | filter
student=$(ls -d "$WORK"/runs/*-student 2>/dev/null | tail -n 1)
[ -f "$student/model.onnx" ] || { log "the student did not finish"; exit 1; }
keep() {
    cp "$student/model.onnx" "$OUT/student.onnx"
    cp "$student/report.json" "$OUT/student-report.json"
    cp "$student/history.json" "$OUT/student-history.json"
}
keep
# Epochs that fit before the deadline, from the median seconds of the first run's epochs (the
# first one warms up), less 60 s for starting, reloading the data and targets, and exporting.
total=$(python3 - "$student/history.json" "$EPOCHS_S1" "$EPOCHS_S" $((DEADLINE - SECONDS - 60)) <<'EOF'
import json, statistics, sys
history, (done, most, left) = json.load(open(sys.argv[1])), map(int, sys.argv[2:])
per_epoch = statistics.median([e["seconds"] for e in history[1:]] or [history[0]["seconds"]])
print(min(most, done + max(0, int(left // max(per_epoch, 1e-3)))))
EOF
)
log "student: $EPOCHS_S1 epochs done, $((DEADLINE - SECONDS)) s left: room for $total epochs in all"
if (( total >= EPOCHS_S1 + 3 )); then
    timeout -s TERM $((DEADLINE - SECONDS - 10)) python3 -m emotiscope train --resume "$student" \
        --epochs "$total" 2>&1 | filter
    if [ "${PIPESTATUS[0]}" = 0 ] && [ -f "$student/model.onnx" ]; then keep; else
        log "the extension did not finish: \$OUT keeps the $EPOCHS_S1-epoch student"; fi
fi
log "done in ${SECONDS}s: $(ls "$OUT" | paste -sd' ' -)"
