#!/usr/bin/env bash
# The GPU check, ready to run as is on a lent GPU machine (<= 9.5 minutes):
#   bash benchmarks/device_check.sh            # on the GPU: results under $OUT (or results/)
#   bash benchmarks/device_check.sh --dry      # the same steps on the CPU, a few batches each (tested)
# 1. Training throughput (benchmarks/train_step.py, Lightning epochs) of the study CNN and BeatResNet at
#    fp32 batch 128 and bf16-mixed batch 1024 with data.cut_on_device on: benchmark_gpu.txt.
# 2. The DS1 cross-validation sweeps of benchmarks/gpu_cv_candidates.txt (one line per candidate: NAME overrides...;
#    5 subject folds x seeds 12-14 (DEVICE_SEEDS) each, all candidates at once, fifteen jobs each on the one GPU),
#    then each sweep's dominant-S stress sweep (evaluate side=val data.reference_beats=annotated_S): cv_NAME.tar.xz (without
#    checkpoints) for benchmarks/selection_over_seeds.py here.
# The device image has torch, lightning, torchmetrics, scikit-learn and tensorboard; the rest travels as wheels in
# .whl/ (wfdb, hydra-core, omegaconf, antlr4-python3-runtime, hydra-joblib-launcher; docs/development.md) and the
# records as .devdata/*.tar.xz (the device takes 64 MiB: DS1 and 202, with DEVICE_RECORDS naming them).
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0
[ "${1:-}" = "--dry" ] && dry=1
out="${OUT:-results}"
mkdir -p "$out"
start=$(date +%s)
if [ "$dry" = 0 ]; then  # the device image: the wheels it lacks and the records, offline
  if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  fi
  for archive in .devdata/*.tar.xz; do
    [ -e "$archive" ] || continue
    mkdir -p /tmp/mitdb && python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall('/tmp/mitdb')" "$archive"
    export MITDB_DIR=/tmp/mitdb
  done
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt" || true
fi
root="$(realpath -m "${MITDB_DIR:-../shared/data/mitdb}")"
records=()
[ -n "${DEVICE_RECORDS:-}" ] && records=("data.records=[$DEVICE_RECORDS]")
export ECG_LIGHTNING_CACHE="${ECG_LIGHTNING_CACHE:-/tmp/ecg_cache}"
if [ "$dry" = 1 ]; then
  accel=cpu; limit=(--batches 2 --repeats 1); models=(cnn); runs=("32-true 16 false" "32-true 16 true")
  seeds=12; folds=0; n_folds=2; jobs=1; keep=1; train_limit=(trainer.max_epochs=1 +trainer.limit_train_batches=2 +trainer.limit_val_batches=2)
else
  accel=gpu; limit=(--repeats 1); models=(cnn resnet); runs=("32-true 128 false" "bf16-mixed 1024 true")
  seeds="${DEVICE_SEEDS:-12,13,14}"; folds=0,1,2,3,4; n_folds=5; jobs="${DEVICE_JOBS_PER_CANDIDATE:-15}"; keep=100; train_limit=()
fi
report="$out/benchmark_gpu.txt"
: > "$report"
[ "${DEVICE_THROUGHPUT:-1}" = 0 ] && runs=()  # a short lease: the cross-validation alone
for run in "${runs[@]+"${runs[@]}"}"; do
  read -r precision size on_device <<< "$run"
  timeout 75 python benchmarks/train_step.py --root "$root" --models "${models[@]}" --threads 1 "${limit[@]}" \
    --accelerator "$accel" --precision "$precision" \
    --override "data.batch_size=$size" "data.cut_on_device=$on_device" "${records[@]}" | tee -a "$report" \
    || echo "throughput check $run stopped" | tee -a "$report"
done
echo "throughput checks: $(( $(date +%s) - start )) s" | tee -a "$report"

# 2. the candidates' DS1 cross-validation, all at once; each stopped at the time left (DEVICE_SECONDS in all)
budget="${DEVICE_SECONDS:-560}"
train_until=$(( start + budget - 90 ))
export OMP_NUM_THREADS=1
# the candidates' store built once, before the jobs that would each build it at once
candidates="${DEVICE_CANDIDATES:-benchmarks/gpu_cv_candidates.txt}"
chosen=$(mktemp)
grep -v -e '^#' -e '^$' "$candidates" | head -n "$keep" > "$chosen"  # --dry: the first one
first=$(head -n 1 "$chosen" | cut -d' ' -f2-)
# shellcheck disable=SC2086
(cd benchmarks && python -c "import sys; from common import compose_train; from hydra.utils import instantiate
instantiate(compose_train(sys.argv[1:]).data, _convert_='all').setup('fit')" $first data.inner_split=kfold \
  "data.n_folds=$n_folds" data.fold=0 "data.catalog.mitdb.root=$root" "${records[@]}") || echo "store not built first" | tee -a "$report"
pids=()
while read -r name overrides; do
  # shellcheck disable=SC2086  # the overrides are words
  timeout $(( train_until - $(date +%s) )) python -m ecg_lightning.train -m $overrides "seed=$seeds" \
    data.inner_split=kfold "data.n_folds=$n_folds" "data.fold=$folds" score_test=false "trainer.accelerator=$accel" \
    "data.catalog.mitdb.root=$root" "${records[@]}" "${train_limit[@]}" threads=1 \
    hydra/launcher=joblib "hydra.launcher.n_jobs=$jobs" "hydra.sweep.dir=$out/cv/$name" \
    callbacks.progress_bar.refresh_rate=0 > "$out/cv_$name.log" 2>&1 &
  pids+=($!)
done < "$chosen"
for pid in "${pids[@]}"; do wait "$pid" || echo "a sweep stopped (time or error; its log says)" | tee -a "$report"; done
echo "cross-validation sweeps: $(( $(date +%s) - start )) s" | tee -a "$report"
for sweep in "$out"/cv/*/; do
  name=$(basename "$sweep")
  # a run stopped by the time limit keeps its last finished epoch's checkpoint and says so in FAILED.txt
  finished=$(for run in "$sweep"*/; do [ -f "${run}checkpoints/last.ckpt" ] && [ ! -f "${run}FAILED.txt" ] \
    && echo "${run}checkpoints/last.ckpt"; done)
  ckpts=$(echo "$finished" | sed "/^$/d; s|.*|'&'|" | paste -sd, -)
  echo "$name: $(echo "$finished" | grep -c . || true) trainings finished, $(ls -d "$sweep"*/FAILED.txt 2>/dev/null \
    | wc -l) stopped" | tee -a "$report"
  [ -n "$ckpts" ] && python -m ecg_lightning.evaluate -m "ckpt_path=$ckpts" side=val \
    data.reference_beats=annotated_S "data.catalog.mitdb.root=$root" "${records[@]}" \
    "hydra.sweep.dir=$out/stress/$name" > "$out/stress_$name.log" 2>&1 &
done
wait || true
echo "stress sweeps: $(( $(date +%s) - start )) s" | tee -a "$report"
for sweep in "$out"/cv/*/; do
  name=$(basename "$sweep")
  tar cJf "$out/cv_$name.tar.xz" --exclude='*.ckpt' --exclude='*.png' -C "$out" "cv/$name" \
    $( [ -d "$out/stress/$name" ] && echo "stress/$name" )
done
tail -n 3 "$out"/cv_*.log "$out"/stress_*.log > "$out/sweep_log_tails.txt" 2>&1 || true
[ "$dry" = 0 ] && rm -rf "$out/cv" "$out/stress" "$out"/*.log
echo "device check: $(( $(date +%s) - start )) s" | tee -a "$report"
