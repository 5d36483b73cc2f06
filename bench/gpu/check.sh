#!/usr/bin/env bash
# Every check that needs a GPU, in one run on a machine with one (H100/H200: sm_90a, A100: sm_80):
#   1. configure Keel with the CUDA backend in build-gpu, for this GPU's architecture only (to
#      build fast), and build just libkeel and the [cuda] test
#   2. the [cuda] tests; they must run, not skip (a skip here means the device was not seen)
#   3. the GPU bandwidth benchmark (bench/gpu/elementwise_gpu.cpp) against cudaMemcpy
#   4. the rest of the build and the rest of the test suite (OTHER_TESTS=0 leaves it out; the
#      PyTorch parity test needs python3-torch and runs only with RUN_PARITY=1)
# then a summary table. Needs no network. Exits non-zero when any step fails; the steps after
# a failed build are skipped, the others still run so that one run shows everything.
#
# Usage: bench/gpu/check.sh            (from anywhere; JOBS=N to limit build parallelism)
#        GENCODE="-gencode=arch=compute_80,code=sm_80" bench/gpu/check.sh   to force an arch
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${BUILD:-$ROOT/build-gpu}"
JOBS="${JOBS:-$(nproc)}"
LOGS="$BUILD/check-logs"
OTHER_TESTS="${OTHER_TESTS:-1}"
RUN_PARITY="${RUN_PARITY:-0}"
# run_limited SECONDS COMMAND...: a step that hangs (a kernel that never ends) fails (137)
# instead of stalling the run.
run_limited() {
  local seconds=$1
  shift
  if command -v timeout >/dev/null 2>&1; then timeout --signal=KILL "$seconds" "$@"; else "$@"; fi
}

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

# The architecture of GPU 0 unless GENCODE is given: 9.0 -> sm_90a (wgmma/TMA), 8.x -> sm_8x.
if [ -z "${GENCODE:-}" ]; then
  CAP="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')"
  case "$CAP" in
    90) GENCODE="-gencode=arch=compute_90a,code=sm_90a" ;;
    [0-9][0-9]) GENCODE="-gencode=arch=compute_$CAP,code=sm_$CAP" ;;
    *) GENCODE="-gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90a,code=sm_90a"
       echo "(compute capability not found: building for sm_80 and sm_90a)" ;;
  esac
fi

# ---- 1. build ---------------------------------------------------------------------------------
banner "configure and build ($GENCODE)"
GENERATOR=()
command -v ninja >/dev/null 2>&1 && GENERATOR=(-G Ninja)
cmake "${GENERATOR[@]}" -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DKEEL_CUDA=ON \
  -DKEEL_CUDA_GENCODE="$GENCODE" -DKEEL_BUILD_BENCH=OFF -DKEEL_BUILD_EXAMPLES=OFF \
  > "$LOGS/configure.log" 2>&1
status=$?
if [ $status -eq 0 ]; then
  cmake --build "$BUILD" -j "$JOBS" --target keel test_cuda_cuda test_cuda_cuda_autograd > "$LOGS/build.log" 2>&1
  status=$?
fi
record "build" $status
if [ $status -ne 0 ]; then
  tail -n 60 "$LOGS/configure.log" "$LOGS/build.log" 2>/dev/null
  echo "check.sh: FAILED: the build failed (logs in $LOGS)" >&2
  exit 1
fi

# The benchmark is built here rather than by CMake: it needs only libkeel and the CUDA runtime.
# -cudart shared: the one CUDA runtime that libkeel uses (nvcc links a second, static one by default).
nvcc -std=c++20 -O3 -cudart shared -I"$ROOT/include" "$ROOT/bench/gpu/elementwise_gpu.cpp" -o "$BUILD/elementwise_gpu" \
  -L"$BUILD" -lkeel -Xlinker -rpath -Xlinker "$BUILD" > "$LOGS/bench-build.log" 2>&1
bench_build=$?
record "build benchmark" $bench_build
[ $bench_build -ne 0 ] && cat "$LOGS/bench-build.log"

# ---- 2. CUDA tests ----------------------------------------------------------------------------
banner "CUDA tests"
status=0
for CUDA_TEST in "$BUILD/tests/test_cuda_cuda" "$BUILD/tests/test_cuda_cuda_autograd"; do
  name="$(basename "$CUDA_TEST")"
  if [ -x "$CUDA_TEST" ]; then
    run_limited 900 "$CUDA_TEST" --durations yes 2>&1 | tee "$LOGS/$name.log" | tail -n 40
    test_status=${PIPESTATUS[0]}
    if grep -q "skipped: no CUDA device" "$LOGS/$name.log"; then
      echo "check.sh: $name skipped: no device was visible to it" >&2
      test_status=2
    fi
  else
    echo "check.sh: $CUDA_TEST was not built" >&2
    test_status=1
  fi
  [ $test_status -ne 0 ] && status=$test_status
done
record "cuda tests" $status

# ---- 3. benchmark -----------------------------------------------------------------------------
banner "GPU bandwidth benchmark"
BENCH_TABLE=""
if [ $bench_build -eq 0 ]; then
  run_limited 300 "$BUILD/elementwise_gpu" 2>&1 | tee "$LOGS/bench.log"
  status=${PIPESTATUS[0]}
  BENCH_TABLE="$(sed -n '/^op /,$p' "$LOGS/bench.log")"
else
  status=1
fi
record "benchmark" $status

# ---- 4. the rest of the tests -----------------------------------------------------------------
if [ "$OTHER_TESTS" != 0 ]; then
  banner "all other tests"
  cmake --build "$BUILD" -j "$JOBS" > "$LOGS/build-all.log" 2>&1
  status=$?
  if [ $status -ne 0 ]; then
    tail -n 60 "$LOGS/build-all.log"
  else
    EXCLUDE='^cuda_'
    [ "$RUN_PARITY" = 0 ] && EXCLUDE='^(cuda_|parity_)' && echo "(parity_torch not run: RUN_PARITY=1 runs it)"
    (cd "$BUILD" && ctest -E "$EXCLUDE" -j "$JOBS" --timeout 600 --output-on-failure) > "$LOGS/ctest.log" 2>&1
    status=$?
    tail -n 25 "$LOGS/ctest.log"
  fi
  record "other tests (ctest)" $status
fi

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
