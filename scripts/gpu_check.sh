#!/usr/bin/env bash
# The GPU checks the kit still owes, each mode one device call under the 600 s limit
# (times estimated from earlier H200 rates, not yet timed);
# every result is written to $OUT as it comes, so a run cut short still reports.
#
#   bash scripts/gpu_check.sh speed          CUDA tests + fused throughput: lanes, hybrid, auto (issue 7), est. 6 min
#   bash scripts/gpu_check.sh reproduce [N]  full-size class removal on CIFAR-10 (issue 5), N = 4: est. 8 min
#
# For reproduce, here first: python scripts/pack_images.py pack <cifar10 folder> .gpu/cifar10.npz
# (54 MiB: the whole CIFAR-10 travels; .gpu/ is git-ignored), then name ".gpu" in carry.
# A session has 15 device minutes in all, machine start included: one mode per session.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-runs/gpu-check}
mkdir -p "$OUT"
start=$SECONDS
stage() { echo; echo "=== $1 (t = $((SECONDS - start)) s)"; }

stage "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuDNN', torch.backends.cudnn.version())"

mode=${1:-speed}
if [ "$mode" = speed ]; then
    stage "CUDA tests"
    timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_fused.py tests/test_scoring.py \
        -k "cuda or graph" 2>&1 | tee "$OUT/tests.log" | tail -5
    stage "fused throughput with lanes (resnet18, bf16 + channels_last + graphs)"
    timeout 240 python3 scripts/bench_train.py --device cuda --model resnet18 --k 32,64 \
        --lanes 2,4 --procs 0 --steps 20 --json "$OUT/bench_lanes.json" 2>&1 \
        | tee "$OUT/bench.log" | grep -v "^ *warning"
    stage "the same with hybrid convolutions (weight gradients as batched GEMMs)"
    timeout 150 python3 scripts/bench_train.py --device cuda --model resnet18 --k 64 \
        --lanes 2 --procs 0 --steps 20 --options bf16+cl+graph+hybrid \
        --json "$OUT/bench_hybrid.json" 2>&1 | tee "$OUT/bench_hybrid.log" | grep -v "^ *warning"
    stage "per-layer forms chosen by timing graph replays (auto)"
    timeout 150 python3 scripts/bench_train.py --device cuda --model resnet18 --k 64 \
        --procs 0 --steps 20 --options bf16+cl+graph+auto \
        --json "$OUT/bench_auto.json" 2>&1 | tee "$OUT/bench_auto.log" | grep -v "^ *warning"
elif [ "$mode" = reproduce ]; then
    [ -f .gpu/cifar10.npz ] || { echo ".gpu/cifar10.npz missing: pack it here and carry .gpu"; exit 2; }
    stage "full-size reproduction: class removal, N = ${2:-4}"
    python3 scripts/pack_images.py unpack .gpu/cifar10.npz /tmp/cifar10
    UNLEARNKIT_DATA=/tmp/cifar10 timeout $((570 - (SECONDS - start))) python3 scripts/reproduce.py \
        --bench cifar10 --device cuda --fused 32 --models "${2:-4}" --scenario class --quiet \
        --set unsir.impair_lr=0.002 --set unsir.repair_lr=0.001 \
        --out "$OUT/results-cifar10.json" 2>&1 | tee "$OUT/reproduce.log" | tail -40
else
    echo "unknown mode $mode: use speed or reproduce [N]"; exit 2
fi
stage "done"
