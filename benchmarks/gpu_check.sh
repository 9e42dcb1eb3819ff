#!/usr/bin/env bash
# The GPU checks in one pass, for a machine lent for minutes (docs/performance.md, "GPU: measured on an H200"):
# the CUDA tests, the whole suite under CUDA, then perf.py on CIFAR-size and ImageNet-size pools. Correctness comes
# first: the suite had never run to its end on a GPU. Each step has its own time limit and writes its log as it
# goes, so a run cut short still says what it found; at most eight files, so that a lease's copy-back takes them all.
#
#     bash benchmarks/gpu_check.sh [LOG_FOLDER]      # default: benchmarks/out/gpu-check/ (git-ignored)
#
# Needs the CIFAR-10 archive where benchmarks/cifar.py looks for it (../shared/data/, or SUSCLI_SHARED_DATA), and
# the `dev` extras; with pytest-xdist installed the suite runs on every core but two.
set -u
cd "$(dirname "$0")/.."
out=${1:-benchmarks/out/gpu-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
start=$(date +%s)
step() {  # step NAME LIMIT COMMAND...: run with a time limit, log to NAME.log, note the elapsed time
    # SIGINT at the limit: pytest then stops as after Ctrl-C and still prints the tracebacks of the failures so far
    # (the first lease's run was killed before it printed any); KILL 20 s later if it does not end
    local name=$1 limit=$2
    shift 2
    timeout --signal=INT --kill-after=20 "$limit" "$@" >"$out/$name.log" 2>&1
    echo "$name: exit $?, $(($(date +%s) - start)) s since the start" | tee -a "$out/timing.txt"
}
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA')"
    nproc
} >>"$out/env.txt" 2>&1
workers=()
if python3 -c "import xdist" 2>/dev/null; then workers=(-n "$(($(nproc) > 4 ? $(nproc) - 2 : 2))"); fi
step unpack 45 python3 -c "import sys; sys.path.insert(0, 'benchmarks'); import cifar; cifar.ensure_unpacked()"
step test_cuda 60 python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py tests/test_susceptibility.py tests/test_batched.py
# -v (with the project's -q taken out) names every test as it ends, so the failures are known even when the limit
# cuts the run short
step tests_all 190 python3 -m pytest -o addopts= -v --tb=short -p no:cacheprovider "${workers[@]}" tests
grep -E "FAILED|ERROR" "$out/tests_all.log" >"$out/tests_failed.txt" || true
step perf_resnet20 110 python3 benchmarks/perf.py --workers 8 --rounds 1
step perf_resnet50 90 python3 benchmarks/perf.py --arch resnet50 --models 4 --unlabeled 1000 --train 5000 --workers 8 --rounds 1
