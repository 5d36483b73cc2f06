#!/usr/bin/env bash
# Runs the tensor-core CPU benchmark of Keel (bench/core_bench.cpp) and of PyTorch
# (bench/torch_core_bench.py) in one go and writes the "Tensor core (CPU)" section of
# bench/RESULTS.md (replacing the previous one). Builds nothing: build core_bench first
# (cmake ... -DKEEL_BUILD_BENCH=ON; ninja -C <build dir> core_bench).
#
# Usage: bench/run_core_bench.sh [build dir, default: build]
# Both sides run with OMP_NUM_THREADS=2; PyTorch also with OMP_WAIT_POLICY=PASSIVE.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$root/$build"
binary="$build/bench/core_bench"
if [ ! -x "$binary" ]; then
  echo "[run_core_bench] $binary not found: build it first (ninja -C $build core_bench)" >&2
  exit 1
fi
python=""
for candidate in "$root/.venv/bin/python" /usr/bin/python3; do
  if [ -x "$candidate" ] && "$candidate" -c 'import torch' 2>/dev/null; then python="$candidate"; break; fi
done
if [ -z "$python" ]; then
  echo "[run_core_bench] no Python with torch found: run scripts/setup.sh" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "[run_core_bench] Keel: $binary"
OMP_NUM_THREADS=2 "$binary" | tee "$work/keel.jsonl"
echo "[run_core_bench] PyTorch: $python bench/torch_core_bench.py"
OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE "$python" "$root/bench/torch_core_bench.py" | tee "$work/torch.jsonl"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# Machine description: model name, core count, and which of the relevant ISA flags exist.
model="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
cpus="$(nproc)"
flags="$(lscpu | sed -n 's/^Flags:[[:space:]]*//p')"
summary=""
for flag in avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_tile amx_bf16; do
  [[ " $flags " == *" $flag "* ]] && summary+="$flag "
done
hypervisor="$(lscpu | sed -n 's/^Hypervisor vendor:[[:space:]]*//p' | head -1)"
caches="$(lscpu | sed -n 's/^L\([23]\) cache:[[:space:]]*/L\1 /p' | paste -sd, -)"

export KEEL_BENCH_MODEL="$model" KEEL_BENCH_CPUS="$cpus" KEEL_BENCH_FLAGS="${summary% }" \
  KEEL_BENCH_HYPERVISOR="${hypervisor:-none}" KEEL_BENCH_CACHES="$caches" \
  KEEL_BENCH_LOAD="$load_before (before), $load_after (after)" \
  KEEL_BENCH_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" \
  KEEL_BENCH_COMMAND="bench/run_core_bench.sh ${1:-build}" KEEL_BENCH_BUILD="${1:-build}" \
  KEEL_BENCH_TORCH_PYTHON="$(basename "$python")"
"$python" - "$work/keel.jsonl" "$work/torch.jsonl" "$root/bench/RESULTS.md" <<'PY'
import json, os, re, sys

keel_path, torch_path, results_path = sys.argv[1:4]
def read(path):
    rows = {}
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            row = json.loads(line)
            rows[(row["group"], row["name"])] = row
    return rows
keel, torch = read(keel_path), read(torch_path)
env = os.environ
# GB/s: the machine limit for the fractions, the better of the probes run first and last
limit = max(keel[(g, "memcpy_64MiB")]["value"] for g in ("copy", "copy_end") if (g, "memcpy_64MiB") in keel)

def pct(value):
    return f"{100 * value / limit:.0f}%"

lines = ["<!-- core_bench:begin (written by bench/run_core_bench.sh; edits inside are overwritten) -->",
         "## Tensor core (CPU): Keel vs PyTorch", "",
         f"- Machine: {env['KEEL_BENCH_MODEL']}, {env['KEEL_BENCH_CPUS']} CPUs "
         f"(hypervisor: {env['KEEL_BENCH_HYPERVISOR']}; {env['KEEL_BENCH_CACHES']}); "
         f"ISA flags: {env['KEEL_BENCH_FLAGS']}",
         f"- Keel: CPU kernels `{keel[('info', 'threads')].get('isa', '?')}`, "
         f"{keel[('info', 'threads')]['value']} OpenMP threads. PyTorch {torch[('info', 'threads')].get('torch', '?')} "
         f"(Debian python3-torch), {torch[('info', 'threads')]['value']} threads, OMP_WAIT_POLICY=PASSIVE.",
         f"- Date: {env['KEEL_BENCH_DATE']}; load average (1/5/15 min): {env['KEEL_BENCH_LOAD']}",
         f"- Command: `{env['KEEL_BENCH_COMMAND']}` (runs `OMP_NUM_THREADS=2 {env['KEEL_BENCH_BUILD']}/bench/core_bench` and "
         f"`OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE python3 bench/torch_core_bench.py`)",
         "- Every figure is the median of 9 timed runs after a warm-up of >= 2 calls and >= 0.25 s. GB/s counts bytes read + written "
         "once (e.g. add on 16M f32: 3 x 64 MiB). Ratio = Keel speed / PyTorch speed (> 1: Keel faster). "
         f"\"of copy\" = fraction of the measured copy bandwidth: a 2-thread memcpy of 64 MiB, **{limit:.1f} GB/s**.",
         ""]

# (a) overhead
k = keel[("overhead", "add_1_element_f32")]["value"]
t = torch[("overhead", "add_1_element_f32")]["value"]
lines += ["### Overhead of a tiny op (1-element f32 add, allocating its output)", "",
          "| metric | Keel | PyTorch | ratio | target <= 1 us |", "|---|---:|---:|---:|---|",
          f"| ns per op | {k:.0f} | {t:.0f} | {t / k:.2f} | {'met' if k <= 1000 else 'NOT met'} |", ""]

# (b) copy
lines += ["### Copy bandwidth (read + write bytes)", "",
          "| size | memcpy probe, 2 threads (Keel bench; better of first and last run) | PyTorch `copy_` | PyTorch of probe |", "|---|---:|---:|---:|"]
for mib in (16, 64, 256):
    probe = max(keel[(g, f"memcpy_{mib}MiB")]["value"] for g in ("copy", "copy_end") if (g, f"memcpy_{mib}MiB") in keel)
    tc = torch[("copy", f"torch_copy_{mib}MiB")]["value"]
    lines.append(f"| {mib} MiB | {probe:.1f} GB/s | {tc:.1f} GB/s | {100 * tc / probe:.0f}% |")
lines.append("")

def table(group, title, target=None):
    out = [f"### {title}", "",
           "| op | Keel GB/s | PyTorch GB/s | ratio | Keel of copy | PyTorch of copy |"
           + (" target >= 80% of copy |" if target else ""),
           "|---|---:|---:|---:|---:|---:|" + ("---|" if target else "")]
    verdicts = []
    for (g, name), row in keel.items():
        if g != group:
            continue
        kv = row["value"]
        met = kv >= target * limit if target else None
        if target:
            verdicts.append((name, met))
        if (g, name) not in torch:  # PyTorch has no CPU kernel for it
            out.append(f"| {name} | {kv:.1f} | n/a (no CPU kernel in PyTorch) | - | {pct(kv)} | - |"
                       + ((" met |" if met else " NOT met |") if target else ""))
            continue
        tv = torch[(g, name)]["value"]
        out.append(f"| {name} | {kv:.1f} | {tv:.1f} | {kv / tv:.2f} | {pct(kv)} | {pct(tv)} |"
                   + ((" met |" if met else " NOT met |") if target else ""))
    return out + [""], verdicts

t1, verdicts = table("elementwise", "Large contiguous elementwise ops, 16M f32, into a preallocated output (kernel)", 0.8)
t2, _ = table("elementwise_op", "The same through the allocating public op (`add(a, b)`, `torch.add(a, b)`): includes a fresh 64 MiB output")
t16, _ = table("elementwise_16bit", "16-bit floats (computed in f32), 16M elements, into a preallocated output")
t3, _ = table("reduction", "Reductions of a [4096, 4096] f32 tensor")
lines += t1 + t2 + t16 + t3
met = [n for n, m in verdicts if m]
unmet = [n for n, m in verdicts if not m]
lines += ["### Targets", "",
          f"- <= 1 us per tiny op: **{'met' if k <= 1000 else 'NOT met'}** ({k:.0f} ns).",
          f"- >= 80% of the measured copy bandwidth on large contiguous elementwise ops (kernel rows): "
          f"met by {', '.join(met) or 'none'}; **not met** by {', '.join(unmet) or 'none'}.",
          "", "<!-- core_bench:end -->"]
section = "\n".join(lines) + "\n"

text = open(results_path).read() if os.path.exists(results_path) else "# Benchmark results\n\n"
pattern = re.compile(r"<!-- core_bench:begin.*?<!-- core_bench:end -->\n?", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
open(results_path, "w").write(text)
print(f"[run_core_bench] wrote the core section of {results_path}")
PY
