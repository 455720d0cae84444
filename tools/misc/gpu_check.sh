#!/usr/bin/env bash
# Usage: bash tools/misc/gpu_check.sh [OUT_DIR]
#
# The GPU path end to end on one CUDA machine with the project's .venv: the
# GPU's name, the CUDA tests (pytest -m cuda), `make demo-data` and a 2-epoch
# --amp demo training, tools/infer.py with that model on a 4096x4096 synthetic
# scan, and benchmark.py --device cuda --amp (ours vs smp and mmseg). Logs and
# results go to OUT_DIR (default work_dirs/gpu_check/<date>), the demo data to
# data/artefact_demo. Every step has a timeout; all together stay under 9
# minutes. Prints a summary with each step's status (also OUT_DIR/summary.txt).
# Exit status: 0 all steps passed, 1 a step failed, 2 no GPU or no .venv (nothing run).
# PYTHON (default .venv/bin/python) and BENCH_ARGS override the defaults.
set -u
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
BENCH_ARGS=${BENCH_ARGS:-"--repeats 5 --warmup 2"}

no_gpu() {
    echo "gpu_check: no GPU present ($1); nothing was run." >&2
    exit 2
}
command -v nvidia-smi > /dev/null 2>&1 || no_gpu 'nvidia-smi not found'
nvidia-smi -L > /dev/null 2>&1 || no_gpu 'nvidia-smi lists no device'
PYTHON=$(command -v "$PYTHON" || echo "$PYTHON")  # a name on PATH (python3) too
if [ ! -x "$PYTHON" ]; then
    echo "gpu_check: $PYTHON not found: run make venv first, or set PYTHON." >&2
    exit 2
fi
timeout -k 3 20 "$PYTHON" -c \
    'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || no_gpu "torch.cuda.is_available() is False in $PYTHON"

OUT=${1:-work_dirs/gpu_check/$(date +%Y%m%d_%H%M%S)}
mkdir -p "$OUT" || exit 1
echo "gpu_check: writing to $OUT"
SUMMARY=()
FAILED=0

record() {  # record NAME STATUS SECONDS
    SUMMARY+=("$(printf '%-11s %-26s %4ss  %s' "$1" "$2" "$3" "$OUT/$1.log")")
    [ "$2" = ok ] || FAILED=1
    echo "   $1: $2"
}

step() {  # step NAME SECONDS COMMAND...: run it under a timeout, log to OUT/NAME.log
    local name=$1 limit=$2 start=$SECONDS status=ok rc
    shift 2
    echo "== $name (at most ${limit}s)"
    timeout -k 3 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        status="TIMEOUT after ${limit}s"
    elif [ $rc -ne 0 ]; then
        status="FAILED (exit $rc)"
        tail -n 5 "$OUT/$name.log" | sed 's/^/   | /'
    fi
    LAST_SECONDS=$((SECONDS - start))
    record "$name" "$status" $LAST_SECONDS
    [ $rc -eq 0 ]
}

skip() {  # skip NAME WHY: a step that could not run counts as failed
    echo "== $1: skipped, $2" > "$OUT/$1.log"
    record "$1" "SKIPPED ($2)" 0
}

GPU_INFO='import torch
print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))'
step gpu 15 bash -c 'nvidia-smi --query-gpu=name,driver_version,memory.total \
    --format=csv,noheader && "$1" -c "$2"' _ "$PYTHON" "$GPU_INFO"
GPU_NAME=$(head -n 1 "$OUT/gpu.log")

if step cuda_tests 180 "$PYTHON" -m pytest tests/test_cuda -m cuda -q -rs \
        --junitxml="$OUT/cuda_tests.xml"; then
    # on a GPU none of them may skip
    if grep -q 'skipped="[1-9]' "$OUT/cuda_tests.xml"; then
        unset 'SUMMARY[-1]'
        record cuda_tests 'FAILED (tests skipped)' $LAST_SECONDS
    fi
fi

# -o: never rebuild .venv here (that would reinstall from the network)
step demo_data 30 make -o .venv/.installed demo-data PY="$PYTHON"

TRAIN=$OUT/train
TRAINED=0
if step train 70 "$PYTHON" tools/train.py configs/demo/convnext_tiny_upernet_demo.py \
        --amp --work-dir "$TRAIN" --cfg-options train_cfg.max_epochs=2; then
    if grep -q -- '--amp: fp16 mixed precision on CUDA' "$OUT/train.log"; then
        TRAINED=1
    else
        unset 'SUMMARY[-1]'
        record train 'FAILED (not fp16 AMP)' $LAST_SECONDS
    fi
fi

SCAN=$OUT/scan_4096.png
step scan 20 "$PYTHON" -c 'import sys, cv2
from benchmarks.scan import synthetic_scan
if not cv2.imwrite(sys.argv[1], synthetic_scan(4096)):
    sys.exit(f"cannot write {sys.argv[1]}")' "$SCAN"

if [ $TRAINED = 1 ] && [ -f "$SCAN" ]; then
    step infer 50 "$PYTHON" tools/infer.py "$SCAN" --model "$TRAIN" --out "$OUT/infer" \
        --device cuda --window-batch 16
else
    skip infer 'no model or scan'
fi

# shellcheck disable=SC2086  # BENCH_ARGS holds several options
step benchmark 170 "$PYTHON" tools/analysis_tools/benchmark.py --device cuda --amp \
    $BENCH_ARGS --out "$OUT/benchmark.md"

{
    echo "gpu_check $(date '+%Y-%m-%d %H:%M:%S'), $(git rev-parse --short HEAD 2>/dev/null)"
    echo "GPU: ${GPU_NAME:-unknown}"
    echo "cuda tests: $(tail -n 1 "$OUT/cuda_tests.log" 2>/dev/null)"
    printf '%s\n' "${SUMMARY[@]}"
    [ $FAILED = 0 ] && echo 'all steps passed' || echo 'some steps FAILED'
} | tee "$OUT/summary.txt"
exit $FAILED
