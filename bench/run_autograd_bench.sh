#!/usr/bin/env bash
# Runs the autograd overhead benchmark of Keel (bench/autograd_bench.cpp) and of PyTorch
# (bench/torch_autograd_bench.py) in one go and writes the "Autograd" section of bench/RESULTS.md
# (replacing the previous one). Builds nothing: build autograd_bench first
# (cmake ... -DKEEL_BUILD_BENCH=ON; ninja -C <build dir> autograd_bench).
#
# Usage: bench/run_autograd_bench.sh [build dir, default: build]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build}"
[[ "$build" = /* ]] || build="$root/$build"
binary="$build/bench/autograd_bench"
if [ ! -x "$binary" ]; then
  echo "[run_autograd_bench] $binary not found: build it first (ninja -C $build autograd_bench)" >&2
  exit 1
fi
python=""
for candidate in "$root/.venv/bin/python" /usr/bin/python3; do
  if [ -x "$candidate" ] && "$candidate" -c 'import torch' 2>/dev/null; then python="$candidate"; break; fi
done
[ -n "$python" ] || { echo "[run_autograd_bench] no Python with torch found: run scripts/setup.sh" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "[run_autograd_bench] Keel: $binary"
OMP_NUM_THREADS=1 "$binary" | tee "$work/keel.jsonl"
echo "[run_autograd_bench] PyTorch: $python bench/torch_autograd_bench.py"
OMP_NUM_THREADS=1 "$python" "$root/bench/torch_autograd_bench.py" | tee "$work/torch.jsonl"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

export KEEL_BENCH_MODEL="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)" \
  KEEL_BENCH_LOAD="$load_before (before), $load_after (after)" \
  KEEL_BENCH_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" \
  KEEL_BENCH_COMMAND="bench/run_autograd_bench.sh ${1:-build}"
"$python" - "$work/keel.jsonl" "$work/torch.jsonl" "$root/bench/RESULTS.md" <<'PY'
import json, os, re, sys

keel_path, torch_path, results_path = sys.argv[1:4]
def read(path):
    return {json.loads(l)["name"]: json.loads(l) for l in open(path) if l.strip().startswith("{")}
keel, torch = read(keel_path), read(torch_path)
env = os.environ
k, t = keel["chain_fwd_bwd"], torch["chain_fwd_bwd"]
kf, tf = keel["chain_fwd"], torch["chain_fwd"]
def growth(row):
    samples = row["samples"]
    return samples[-1] - samples[0], samples
kg, ks = growth(keel["rss_kib"])
tg, ts = growth(torch["rss_kib"])
lines = ["<!-- autograd_bench:begin (written by bench/run_autograd_bench.sh; edits inside are overwritten) -->",
         "## Autograd overhead (CPU): Keel vs PyTorch", "",
         f"- Machine: {env['KEEL_BENCH_MODEL']}; one thread on both sides. PyTorch {t.get('torch', '?')} from Python "
         "(Debian python3-torch).",
         f"- Date: {env['KEEL_BENCH_DATE']}; load average (1/5/15 min): {env['KEEL_BENCH_LOAD']}",
         f"- Command: `{env['KEEL_BENCH_COMMAND']}` (runs `bench/autograd_bench` and `python3 bench/torch_autograd_bench.py`)",
         f"- Workload: a chain of {k['ops']} tiny ops (mul/add by a scalar, sin, mul/sub by a tensor, tanh, neg, exp) on a "
         "1-element f32 tensor that requires grad, then backward and zero_grad. Median of 9 runs of 2000 chains "
         "(min-max in brackets). Ratio = PyTorch time / Keel time (> 1: Keel faster).", "",
         "| metric | Keel | PyTorch | ratio | target |", "|---|---:|---:|---:|---|",
         f"| forward + backward, ns per op | {k['value']:.0f} [{k['min']:.0f}-{k['max']:.0f}] | {t['value']:.0f} "
         f"[{t['min']:.0f}-{t['max']:.0f}] | {t['value'] / k['value']:.2f} | <= 2000 ns: "
         f"{'met' if k['value'] <= 2000 else 'NOT met'} |",
         f"| forward only, ns per op | {kf['value']:.0f} | {tf['value']:.0f} | {tf['value'] / kf['value']:.2f} | - |",
         f"| RSS growth over 1e5 chains (1.14e7 ops) | {kg} KiB | {tg} KiB | - | flat: "
         f"{'met' if kg <= 256 else 'NOT met'} |", "",
         f"RSS every 1e4 chains, KiB: Keel {ks}; PyTorch {ts}.", "",
         "<!-- autograd_bench:end -->"]
section = "\n".join(lines) + "\n"
text = open(results_path).read()
pattern = re.compile(r"<!-- autograd_bench:begin.*?<!-- autograd_bench:end -->\n?", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
open(results_path, "w").write(text)
print(f"[run_autograd_bench] wrote the autograd section of {results_path}")
PY
