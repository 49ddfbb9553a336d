#!/usr/bin/env bash
# The GPU check, ready to run as is on a lent GPU machine (<= 8 minutes):
#   bash benchmarks/device_check.sh            # on the GPU: writes results/benchmark_gpu.txt
#   bash benchmarks/device_check.sh --dry      # the same steps on the CPU, a few batches each (tested)
# Training throughput (benchmarks/train_step.py, Lightning epochs) of the study CNN, CNN+LSTM and BeatResNet at
# fp32 and bf16-mixed, batch 128 and 1024, with data.cut_on_device off and on; then, while time is left, the
# recommended inter-patient model over 5 seeds (DS1 -> DS2; results/benchmark_gpu_ds2_seeds.json).
# The device image has torch, lightning, torchmetrics, scikit-learn and tensorboard; wfdb, hydra-core and tqdm
# come as wheels carried in wheels/ (pip download -d wheels wfdb hydra-core tqdm), installed offline first.
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0
[ "${1:-}" = "--dry" ] && dry=1
out="${OUT:-results}"
mkdir -p "$out"
if [ "$dry" = 0 ]; then  # the device image: the project and the wheels it lacks, offline
  if [ -d wheels ]; then pip install -q --no-index --find-links wheels wfdb hydra-core tqdm; fi
  pip install -q --no-deps -e .
fi
root="${MITDB_DIR:-../shared/data/mitdb}"
if [ "$dry" = 1 ]; then accel=cpu; limit=(--batches 2 --repeats 1); models=(cnn); sizes=(16); precisions=(32-true)
else accel=gpu; limit=(--repeats 2); models=(cnn cnn_lstm resnet); sizes=(128 1024); precisions=(32-true bf16-mixed); fi
report="$out/benchmark_gpu.txt"
: > "$report"
start=$(date +%s)
for precision in "${precisions[@]}"; do
  for size in "${sizes[@]}"; do
    for on_device in false true; do
      python benchmarks/train_step.py --root "$root" --models "${models[@]}" --threads 1 "${limit[@]}" \
        --accelerator "$accel" --precision "$precision" \
        --override "data.batch_size=$size" "data.cut_on_device=$on_device" | tee -a "$report"
    done
  done
done
echo "throughput checks: $(( $(date +%s) - start )) s" | tee -a "$report"
# the 5-seed benchmark while at least ~4 minutes of the 8 are left (each seed ~30 s on an H200, estimated)
if [ "$dry" = 0 ] && [ $(( $(date +%s) - start )) -lt 240 ]; then
  sweep="$out/gpu_ds2_seeds"
  timeout $(( 470 - ($(date +%s) - start) )) python -m ecg_lightning.train -m experiment=aami_sequence \
    trainer.accelerator=gpu seed=0,1,2,3,4 "data.catalog.mitdb.root=$root" hydra.sweep.dir="$sweep" \
    callbacks.progress_bar.refresh_rate=0 > "$out/gpu_ds2_seeds.log" 2>&1 || echo "5-seed run stopped (time)" | tee -a "$report"
  python -m ecg_lightning.aggregate "$sweep" --which test --out "$out/benchmark_gpu_ds2_seeds.json" | tee -a "$report" || true
fi
