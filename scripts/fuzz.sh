#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.cpp, clang with ASan + UBSan; see
# tests/fuzz/CMakeLists.txt) and runs each for a bounded time from its seed corpus
# (tests/fuzz/corpus/<name>/, copied: the source tree is not written). Fails on any crash,
# sanitizer report, leak, timeout (an input over 10 s) or out-of-memory (over 2 GB); the input
# that did it is saved as build-fuzz/artifacts/<target>-crash-... and the fuzzer's log beside it.
# Runs as many targets at once as there are cores. Prints one line per target: runs executed,
# coverage, corpus size, result.
# Usage: scripts/fuzz.sh [seconds per target, default 60]      FUZZ_BUILD_DIR=... to move the build
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
cxx="${FUZZ_CXX:-clang++}"
command -v "$cxx" >/dev/null || { echo "[fuzz] $cxx not found: run scripts/setup.sh (clang, libclang-rt-14-dev)"; exit 1; }

start=$(date +%s)
cmake -S "$root/tests/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
cmake --build "$build" --parallel "$(nproc)"
echo "[fuzz] built in $(( $(date +%s) - start )) s; running each target for $seconds s"

mkdir -p "$build/artifacts" "$build/logs"
targets=()
for binary in "$build"/fuzz_*; do
  [ -f "$binary" ] && [ -x "$binary" ] && targets+=("$(basename "$binary")")
done
if [ "${#targets[@]}" -eq 0 ]; then
  echo "[fuzz] no fuzz targets were built"
  exit 1
fi

# One target: seeds copied into its working corpus (kept between runs), then libFuzzer.
run_target() {
  local target="$1" name="${1#fuzz_}"
  local work="$build/corpus/$name" seeds="$root/tests/fuzz/corpus/$name"
  mkdir -p "$work"
  if [ -d "$seeds" ]; then cp -n "$seeds"/* "$work"/ 2>/dev/null || true; fi
  local options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
                 -artifact_prefix="$build/artifacts/$target-")
  if [ -f "$root/tests/fuzz/$target.dict" ]; then options+=(-dict="$root/tests/fuzz/$target.dict"); fi
  local rc=0
  "$build/$target" "${options[@]}" "$work" >"$build/logs/$target.log" 2>&1 || rc=$?
  echo "$rc" >"$build/logs/$target.rc"
}

# As many targets at once as there are cores (each fuzzer is single-threaded).
jobs="${FUZZ_JOBS:-$(nproc)}"
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  run_target "$target" &
done
wait

status=0
for target in "${targets[@]}"; do
  log="$build/logs/$target.log"
  rc="$(cat "$build/logs/$target.rc" 2>/dev/null || echo 99)"
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)"
  cov="$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 || true)"
  corpus="$(ls "$build/corpus/${target#fuzz_}" | wc -l)"
  if [ "$rc" -eq 0 ]; then
    result="ok"
  else
    result="FAILED (exit $rc): $(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' "$log" || echo 'see the log') -- log $log"
    status=1
  fi
  echo "[fuzz] $target: ${runs:-0} runs in $seconds s, ${cov:-cov: ?}, corpus $corpus files: $result"
done
echo "[fuzz] $( [ "$status" -eq 0 ] && echo "all ${#targets[@]} targets ok" || echo "FAILED" ) in $(( $(date +%s) - start )) s"
exit "$status"
