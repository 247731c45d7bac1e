#!/usr/bin/env bash
# The prepared GPU run (issue #12): one script, run once on a lent GPU machine.
#   1. the GPU tests (tests/test_device.py: reruns identical, agreement with the CPU);
#   2. one full-scale federated cell alone on the GPU, without and with DP-SGD (bench_cell.py);
#   3. as much of the default grid as fits in $GRID_SECONDS, $SLOTS cells at once on the GPU
#      (snakemake --resources gpu=$SLOTS --config device=cuda), then its throughput.
# Each step runs even if an earlier one failed. Results go to $OUT (default benchmarks/results/gpu).
#   FEDHET_DATA_MIRROR=... GRID_SECONDS=240 SLOTS=12 bash benchmarks/gpu/run.sh
set -uo pipefail
OUT=${OUT:-benchmarks/results/gpu}
GRID_SECONDS=${GRID_SECONDS:-240}
SLOTS=${SLOTS:-12}
CORES=${CORES:-$(nproc)}
DEVICE=${DEVICE:-cuda}  # cpu: a dry rehearsal of the script on a machine without a GPU
TARGET=${TARGET:-all}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.csv" 2>&1
python3 -c "import torch, opacus, pandas; print('torch', torch.__version__, 'opacus', opacus.__version__, 'pandas', pandas.__version__)" | tee "$OUT/steps.log"

echo "== 1. GPU tests $(date +%T)" | tee -a "$OUT/steps.log"
python3 -m pytest -q -p no:cacheprovider tests/test_device.py -n 6 2>&1 | tail -15 | tee -a "$OUT/steps.log"

echo "== 2. one full-scale cell $(date +%T)" | tee -a "$OUT/steps.log"
python3 benchmarks/bench_cell.py ${BENCH_ARGS:-} --device "$DEVICE" --threads 1 --dp all-eps1-delta1e-05-clip1 \
    --out "$OUT/cell_gpu.json" > /dev/null 2>> "$OUT/steps.log"
python3 -c "import json; r=json.load(open('$OUT/cell_gpu.json')); print('nodp', round(r['wall_seconds'],1), 's; dp', round(r['dp']['wall_seconds'],1), 's')" | tee -a "$OUT/steps.log"

echo "== 3. default grid, $SLOTS cells at once, ${GRID_SECONDS}s $(date +%T)" | tee -a "$OUT/steps.log"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 10 > "$OUT/gpu_load.csv" 2>&1 &
monitor=$!
# -k: Snakemake's own shutdown after SIGTERM can hang with jobs on the GPU; KILL it 30 s later.
timeout -k 30 "$GRID_SECONDS" python3 -m snakemake "$TARGET" --cores "$CORES" --resources gpu="$SLOTS" \
    --config device="$DEVICE" --scheduler greedy --keep-going ${SNAKEMAKE_ARGS:-} > "$OUT/grid.log" 2>&1
kill $monitor 2> /dev/null
python3 benchmarks/gpu/grid_throughput.py "$OUT/grid.log" --slots "$SLOTS" --cells-out "$OUT/grid_cells.csv" \
    > "$OUT/grid.json"
cat "$OUT/grid.json" | tee -a "$OUT/steps.log"
