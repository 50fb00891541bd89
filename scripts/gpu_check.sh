#!/usr/bin/env bash
# Every GPU check the kit still owes, in one device call (about 9 minutes; stages in order
# of value, each under its own time limit, every result written to $OUT as it comes).
#
# Here, first:  python scripts/pack_images.py pack <cifar10 image folder> .gpu/cifar10.npz
#               (54 MiB: the whole CIFAR-10 travels; .gpu/ is git-ignored)
# Then:         device run, carry [".gpu"], timeout_s 600, command "bash scripts/gpu_check.sh"
#
# Stages: (1) the CUDA tests; (2) the fused-trainer throughput with lanes (issue 7);
# (3) the full-size reproduction, class removal at N = 8 (issue 5), if the data came.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-runs/gpu-check}
mkdir -p "$OUT"
start=$SECONDS
stage() { echo; echo "=== $1 (t = $((SECONDS - start)) s)"; }

stage "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuDNN', torch.backends.cudnn.version())"

stage "CUDA tests"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_fused.py tests/test_scoring.py \
    -k "cuda or graph" 2>&1 | tee "$OUT/tests.log" | tail -5

stage "fused throughput with lanes (resnet18, bf16 + channels_last + graphs)"
timeout 200 python3 scripts/bench_train.py --device cuda --model resnet18 --k 32,64 \
    --lanes 2,4 --procs 0 --steps 20 --json "$OUT/bench_lanes.json" 2>&1 | tee "$OUT/bench.log" \
    | grep -v "^ *warning"

if [ -f .gpu/cifar10.npz ]; then
    stage "full-size reproduction: class removal, N = 8"
    python3 scripts/pack_images.py unpack .gpu/cifar10.npz /tmp/cifar10
    left=$((560 - (SECONDS - start)))
    if [ "$left" -gt 120 ]; then
        UNLEARNKIT_DATA=/tmp/cifar10 timeout "$left" python3 scripts/reproduce.py --bench cifar10 \
            --device cuda --fused 32 --models 8 --scenario class --quiet \
            --set unsir.impair_lr=0.002 --set unsir.repair_lr=0.001 \
            --out "$OUT/results-cifar10.json" 2>&1 | tee "$OUT/reproduce.log" | tail -40
    else
        echo "skipped: only $left s left"
    fi
fi
stage "done"
