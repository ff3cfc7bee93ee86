#!/usr/bin/env bash
# The GPU check, in one go (under 8 minutes): the `gpu` tests, the processors'
# tests, and bench/gpu.py, on a machine with an NVIDIA GPU.
#
#   bash bench/gpu_check.sh [RESULTS_DIR]
#
# Results (logs, the bench's JSON, nvidia-smi) go to RESULTS_DIR (default
# $OUT if set, else ./gpu-results). Python packages come from the active
# environment; wheels in ./.whl (for a machine with no package index) are
# installed first into a private target, never over the system's packages.
# Every step runs even if one before it failed; the exit status is the
# first failure's.
set -u
cd "$(dirname "$0")/.."
RESULTS="${1:-${OUT:-gpu-results}}"
mkdir -p "$RESULTS"
PY="${PYTHON:-python3}"
status=0
step() {  # step NAME TIMEOUT_S COMMAND...: run one step, log it, keep its status
    local name="$1" limit="$2"
    shift 2
    echo "== $name ($(date -u +%H:%M:%S))" | tee -a "$RESULTS/summary.txt"
    timeout --kill-after=10 "$limit" "$@" >"$RESULTS/$name.log" 2>&1
    local rc=$?
    tail -n 40 "$RESULTS/$name.log"
    echo "== $name: exit $rc" | tee -a "$RESULTS/summary.txt"
    [ "$status" = 0 ] && [ "$rc" != 0 ] && status=$rc
    return 0
}
if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/rigd-site .whl/*.whl || status=1
    export PYTHONPATH="/tmp/rigd-site:${PYTHONPATH:-}"
fi
# rigd from this checkout (workers inherit the path).
export PYTHONPATH="$PWD/src:$PWD:${PYTHONPATH:-}"
export PYTHONUNBUFFERED=1
{ nvidia-smi; nvidia-smi -L; "$PY" --version; "$PY" -m pip list 2>/dev/null \
    | grep -i -E '^(numpy|cupy|nvidia-ml-py|h5py|scipy|scikit-image|pyzmq|pytest) '; } \
    >"$RESULTS/machine.txt" 2>&1
cat "$RESULTS/machine.txt"
# -p no:cacheprovider: the checkout may be read-only; warnings are shown, not
# errors, so that a newer library's deprecation does not hide a GPU result.
# The files are named (not tests/pipeline): the camera sources' tests import
# their libraries (PyAV, Aravis), which a GPU machine need not have.
step gpu_tests 240 "$PY" -m pytest -m gpu -rs -v -p no:cacheprovider -W default \
    -o faulthandler_timeout=200 tests/gpu tests/pipeline/test_processors.py \
    tests/pipeline/test_trigger.py
step processor_tests 150 "$PY" -m pytest -q -rs -p no:cacheprovider -W default \
    tests/pipeline/test_processors.py tests/pipeline/test_trigger.py tests/gpu
step bench 330 "$PY" bench/gpu.py --json "$RESULTS/gpu_bench.json"
cat "$RESULTS/summary.txt"
exit "$status"
