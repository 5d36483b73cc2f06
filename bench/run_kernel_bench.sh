#!/usr/bin/env bash
# The one command for the CPU kernel benchmarks: measures the machine limits (bench/kernels/probe.cpp),
# runs every kernel_bench_<area> executable (Keel and oneDNN side by side in one process), then the
# PyTorch peers (bench/kernels/torch_<area>.py), and rewrites the "CPU kernels" section of
# bench/RESULTS.md with the ratios and fractions of the limits (bench/kernels/report.py).
#
# Usage: bench/run_kernel_bench.sh [build dir, default: build] [area ...]
#   Builds the benchmarks first (ninja kernel_benches, in a Release build with KEEL_BUILD_BENCH=ON).
#   With areas (e.g. "gemm norms"), only those run (the probe always does).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build}"
shift || true
[[ "$build" = /* ]] || build="$root/$build"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKEEL_BUILD_BENCH=ON
fi
cmake --build "$build" --target kernel_benches
python=""
for candidate in "$root/.venv/bin/python" /usr/bin/python3; do
  if [ -x "$candidate" ] && "$candidate" -c 'import torch' 2>/dev/null; then python="$candidate"; break; fi
done
[ -n "$python" ] || { echo "[run_kernel_bench] no Python with torch: run scripts/setup.sh" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "[run_kernel_bench] probe: machine limits"
"$build/bench/kernel_bench_probe" | tee "$work/probe.jsonl"
areas=("$@")
if ((${#areas[@]} == 0)); then
  for binary in "$build"/bench/kernel_bench_*; do
    area="$(basename "$binary")"; area="${area#kernel_bench_}"
    [ "$area" = probe ] || areas+=("$area")
  done
fi


for area in "${areas[@]}"; do
  echo "[run_kernel_bench] $area: Keel and oneDNN"
  "$build/bench/kernel_bench_$area" | tee "$work/$area.jsonl"
  if [ -f "$root/bench/kernels/torch_$area.py" ]; then
    echo "[run_kernel_bench] $area: PyTorch"
    "$python" "$root/bench/kernels/torch_$area.py" | tee "$work/torch_$area.jsonl"
  fi
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$root/bench/results"
cat "$work"/*.jsonl > "$root/bench/results/kernels.jsonl"

flags=""
all_flags="$(lscpu | sed -n 's/^Flags:[[:space:]]*//p')"
for flag in avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_tile amx_bf16 amx_int8; do
  [[ " $all_flags " == *" $flag "* ]] && flags+="$flag "
done
command="bench/run_kernel_bench.sh ${build#$root/}"
((${#areas[@]})) && [ "$#" -gt 0 ] && command+=" $*"
KEEL_BENCH_MODEL="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)" \
KEEL_BENCH_CPUS="$(nproc)" KEEL_BENCH_FLAGS="${flags% }" \
KEEL_BENCH_CACHES="$(lscpu | sed -n 's/^L\([123]d\{0,1\}\) cache:[[:space:]]*/L\1 /p' | paste -sd, -)" \
KEEL_BENCH_LOAD="$load_before (before), $load_after (after)" \
KEEL_BENCH_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" KEEL_BENCH_COMMAND="$command" \
KEEL_BENCH_ONEDNN="$(dpkg-query -W -f='${Version}' libdnnl-dev 2>/dev/null || echo '?')" \
KEEL_BENCH_TORCH="$("$python" -c 'import torch; print(torch.__version__)')" \
KEEL_BENCH_NOTES="$root/bench/kernels/NOTES.md" \
  "$python" "$root/bench/kernels/report.py" "$root/bench/RESULTS.md" "$root/bench/results/kernels.jsonl"
