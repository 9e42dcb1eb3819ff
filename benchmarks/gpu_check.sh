#!/usr/bin/env bash
# The GPU checks in one pass, for a machine lent for minutes (docs/performance.md, "GPU: measured on an H200"):
# the CUDA tests, perf.py on CIFAR-size and ImageNet-size pools, then the whole suite under CUDA. Each step has its
# own time limit and writes its log as it goes, so a run cut short still says what it found.
#
#     bash benchmarks/gpu_check.sh [LOG_FOLDER]      # default: gpu-check/ (git-ignored: the benchmarks' out/)
#
# Needs the CIFAR-10 archive where benchmarks/cifar.py looks for it (../shared/data/).
set -u
cd "$(dirname "$0")/.."
out=${1:-benchmarks/out/gpu-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
start=$(date +%s)
step() {  # step NAME LIMIT COMMAND...: run with a time limit, log to NAME.log, note the elapsed time
    local name=$1 limit=$2
    shift 2
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    echo "$name: exit $?, $(($(date +%s) - start)) s since the start" | tee -a "$out/timing.txt"
}
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"
} >"$out/env.txt" 2>&1
step unpack 120 python3 -c "import sys; sys.path.insert(0, 'benchmarks'); import cifar; cifar.ensure_unpacked()"
step test_cuda 120 python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py tests/test_susceptibility.py tests/test_batched.py
step perf_resnet20 240 python3 benchmarks/perf.py --workers 8
step perf_resnet50 180 python3 benchmarks/perf.py --arch resnet50 --models 4 --unlabeled 1000 --train 5000 --workers 8
# -v names every test as it ends, so the failures are known even when the limit cuts the run short
step tests_all 300 python3 -m pytest -v -p no:cacheprovider tests
grep -E "FAILED|ERROR" "$out/tests_all.log" >"$out/tests_failed.txt" || true
