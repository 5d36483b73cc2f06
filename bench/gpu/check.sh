#!/usr/bin/env bash
# Every check that needs a GPU, in one run on a machine with one (an H100/H200: sm_90a):
#   1. configure and build Keel with the CUDA backend in build-gpu (sm_90a only, to build fast)
#   2. the [cuda] tests; they must run, not skip (a skip here means the device was not seen)
#   3. the GPU bandwidth benchmark (bench/gpu/elementwise_gpu.cpp) against cudaMemcpy
#   4. the rest of the test suite
# then a summary table. Needs no network. Exits non-zero when any step fails; the steps after
# a failed build are skipped, the others still run so that one run shows everything.
#
# Usage: bench/gpu/check.sh            (from anywhere; JOBS=N to limit build parallelism)
#        GENCODE="-gencode=arch=compute_80,code=sm_80" bench/gpu/check.sh   on an A100
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build-gpu}"
JOBS="${JOBS:-$(nproc)}"
GENCODE="${GENCODE:--gencode=arch=compute_90a,code=sm_90a}"
LOGS="$BUILD/check-logs"

declare -a STEP_NAMES=() STEP_RESULTS=()
FAILED=0
record() {  # record NAME STATUS
  STEP_NAMES+=("$1")
  if [ "$2" -eq 0 ]; then STEP_RESULTS+=("ok"); else STEP_RESULTS+=("FAILED ($2)"); FAILED=1; fi
}
banner() { printf '\n==== %s ====\n' "$*"; }

if ! command -v nvcc >/dev/null 2>&1; then
  if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
fi
command -v nvcc >/dev/null 2>&1 || { echo "check.sh: FAILED: nvcc not found" >&2; exit 1; }
mkdir -p "$LOGS"

banner "device"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  echo "(nvidia-smi not found)"
fi
nvcc --version | tail -n 2

# ---- 1. build ---------------------------------------------------------------------------------
banner "configure and build ($GENCODE)"
GENERATOR=()
command -v ninja >/dev/null 2>&1 && GENERATOR=(-G Ninja)
cmake "${GENERATOR[@]}" -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DKEEL_CUDA=ON \
  -DKEEL_CUDA_GENCODE="$GENCODE" -DKEEL_BUILD_BENCH=OFF -DKEEL_BUILD_EXAMPLES=OFF \
  > "$LOGS/configure.log" 2>&1
status=$?
if [ $status -eq 0 ]; then
  cmake --build "$BUILD" -j "$JOBS" > "$LOGS/build.log" 2>&1
  status=$?
fi
record "build" $status
if [ $status -ne 0 ]; then
  tail -n 60 "$LOGS/configure.log" "$LOGS/build.log" 2>/dev/null
  echo "check.sh: FAILED: the build failed (logs in $LOGS)" >&2
  exit 1
fi

# The benchmark is built here rather than by CMake: it needs only libkeel and the CUDA runtime.
nvcc -std=c++20 -O3 -I"$ROOT/include" "$ROOT/bench/gpu/elementwise_gpu.cpp" -o "$BUILD/elementwise_gpu" \
  -L"$BUILD" -lkeel -Xlinker -rpath -Xlinker "$BUILD" > "$LOGS/bench-build.log" 2>&1
bench_build=$?
record "build benchmark" $bench_build
[ $bench_build -ne 0 ] && cat "$LOGS/bench-build.log"

# ---- 2. CUDA tests ----------------------------------------------------------------------------
banner "CUDA tests"
CUDA_TEST="$BUILD/tests/test_cuda_cuda"
if [ -x "$CUDA_TEST" ]; then
  "$CUDA_TEST" --durations yes 2>&1 | tee "$LOGS/test_cuda.log" | tail -n 40
  status=${PIPESTATUS[0]}
  if grep -q "skipped: no CUDA device" "$LOGS/test_cuda.log"; then
    echo "check.sh: the CUDA tests skipped: no device was visible to them" >&2
    status=2
  fi
else
  echo "check.sh: $CUDA_TEST was not built" >&2
  status=1
fi
record "cuda tests" $status

# ---- 3. benchmark -----------------------------------------------------------------------------
banner "GPU bandwidth benchmark"
BENCH_TABLE=""
if [ $bench_build -eq 0 ]; then
  "$BUILD/elementwise_gpu" 2>&1 | tee "$LOGS/bench.log"
  status=${PIPESTATUS[0]}
  BENCH_TABLE="$(sed -n '/^op /,$p' "$LOGS/bench.log")"
else
  status=1
fi
record "benchmark" $status

# ---- 4. the rest of the tests -----------------------------------------------------------------
banner "all other tests"
(cd "$BUILD" && ctest -E '^cuda_' -j "$JOBS" --timeout 900 --output-on-failure) > "$LOGS/ctest.log" 2>&1
status=$?
tail -n 25 "$LOGS/ctest.log"
record "other tests (ctest)" $status

# ---- summary ----------------------------------------------------------------------------------
banner "summary"
printf '%-22s %s\n' "step" "result"
for i in "${!STEP_NAMES[@]}"; do printf '%-22s %s\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}"; done
if [ -n "$BENCH_TABLE" ]; then
  echo
  echo "$BENCH_TABLE"
fi
if [ $FAILED -ne 0 ]; then
  echo "check.sh: FAILED (logs in $LOGS)" >&2
  exit 1
fi
echo "check.sh: all GPU checks passed"
