#!/usr/bin/env python3
"""Joins the JSON lines of the CPU kernel benchmarks (bench_util.h's rows, the probe's machine
limits) into the "CPU kernels" section of bench/RESULTS.md.

Usage: report.py RESULTS.md ROWS.jsonl...   (bench/run_kernel_bench.sh calls it; machine facts
come from the KEEL_BENCH_* environment variables it sets)

For every (group, case, threads) the table shows each implementation's speed (GFLOP/s when the
rows count flops, else GB/s), Keel's ratio to each peer (> 1: Keel faster) and Keel's fraction of
the machine limit named by the row (probe rows of the same run and thread count).
"""
import json
import os
import re
import sys

# The targets: group prefix -> (kind, value, peer). "ratio": keel / peer >= value;
# "limit": keel's fraction of its machine limit >= value.
TARGETS = [
    ("gemm_f32", "ratio", 1.0, "onednn"),
    ("gemm_bf16", "ratio", 1.0, "onednn"),
    ("gemm_f16", "ratio", 1.0, "onednn"),
    ("gemm_int8", "ratio", 1.0, "onednn"),
    ("softmax", "limit", 0.8, None),
    ("log_softmax", "limit", 0.8, None),
    ("layer_norm", "limit", 0.8, None),
    ("rms_norm", "limit", 0.8, None),
    ("attention_fwdbwd", "ratio", 2.0, "keel_composite"),
]
PEER_ORDER = ["onednn", "torch", "keel_composite"]
LIMIT_TITLES = {"fma_f32": "f32 FMA peak", "dot_bf16": "bf16 peak (the faster of vdpbf16ps and f32 FMA)",
                "dot_bf16_raw": "bf16 dot-product peak (vdpbf16ps)",
                "dot_int8": "int8 dot-product peak (vpdpbusd)", "copy_bw": "copy bandwidth (16 MiB)"}


def read_rows(paths):
    rows, info = [], {}
    for path in paths:
        for line in open(path):
            line = line.strip()
            if not line.startswith("{"):
                continue
            row = json.loads(line)
            if "info" in row:
                info[row["info"]] = row
            elif "group" in row:
                rows.append(row)
    return rows, info


def speed(row):
    """GFLOP/s for compute rows, GB/s for memory rows."""
    if row["flops"] > 0:
        return row["flops"] / row["seconds"] / 1e9, "GFLOP/s"
    return row["bytes"] / row["seconds"] / 1e9, "GB/s"


def machine_limits(rows):
    limits = {}
    for row in rows:
        if row["group"] != "machine":
            continue
        if row["case"].startswith("copy_") and row["case"] != "copy_16MiB":
            continue
        name = "copy_bw" if row["case"] == "copy_16MiB" else row["case"]
        limits[(name, row["threads"])] = speed(row)[0]
    return limits


def effective_limits(raw):
    limits = dict(raw)
    # bf16 inputs can also be converted to f32 and multiplied with FMAs; where that is faster
    # (vdpbf16ps runs at half the FMA rate on some CPUs), the machine's bf16 limit is the FMA peak.
    for (name, threads), value in raw.items():
        if name == "dot_bf16" and ("fma_f32", threads) in raw:
            limits[(name, threads)] = max(value, raw[("fma_f32", threads)])
    return limits


def target_of(group):
    for prefix, kind, value, peer in TARGETS:
        if group.startswith(prefix):
            return kind, value, peer
    return None


def build_section(rows, info, env):
    raw_limits = machine_limits(rows)
    limits = effective_limits(raw_limits)
    groups = {}
    for row in rows:
        if row["group"] == "machine":
            continue
        key = (row["case"], row["threads"])
        groups.setdefault(row["group"], {}).setdefault(key, {})[row["impl"]] = row
    lines = ["<!-- kernel_bench:begin (written by bench/run_kernel_bench.sh; edits inside are overwritten) -->",
             "## CPU kernels: Keel vs oneDNN and PyTorch", ""]
    lines += [f"- Machine: {env.get('KEEL_BENCH_MODEL', '?')}, {env.get('KEEL_BENCH_CPUS', '?')} CPUs "
              f"({env.get('KEEL_BENCH_CACHES', '')}); CPU flags: {env.get('KEEL_BENCH_FLAGS', '?')}",
              f"- Keel's view of the CPU: {info.get('cpu', {}).get('features', '?')}",
              f"- Date: {env.get('KEEL_BENCH_DATE', '?')}; load average (1/5/15 min): {env.get('KEEL_BENCH_LOAD', '?')}",
              f"- Command: `{env.get('KEEL_BENCH_COMMAND', 'bench/run_kernel_bench.sh')}`; peers: oneDNN "
              f"{env.get('KEEL_BENCH_ONEDNN', '?')} (in the same process), PyTorch {env.get('KEEL_BENCH_TORCH', '?')} "
              "(Debian's python3-torch, same cases, right after).",
              "- Every figure is a median of 9 timed samples after warm-up. Ratio = Keel's speed / the peer's "
              "(> 1: Keel faster). \"of limit\" = Keel's fraction of the machine limit measured in this run "
              "at the same thread count.", ""]
    lines += ["### Machine limits (this run)", "", "| limit | 1 thread | " +
              " | ".join(f"{t} threads" for t in sorted({t for (_, t) in raw_limits} - {1})) + " |",
              "|---|---:|" + "---:|" * len(sorted({t for (_, t) in raw_limits} - {1}))]
    thread_list = sorted({t for (_, t) in raw_limits})
    for name in ["fma_f32", "dot_bf16", "dot_int8", "copy_bw"]:
        if any((name, t) in raw_limits for t in thread_list):
            unit = "GB/s" if name == "copy_bw" else "GFLOP/s"
            cells = [f"{raw_limits[(name, t)]:.0f} {unit}" if (name, t) in raw_limits else "-" for t in thread_list]
            title = LIMIT_TITLES["dot_bf16_raw" if name == "dot_bf16" else name]
            lines.append(f"| {title} | " + " | ".join(cells) + " |")
    lines.append("")

    verdicts = []
    for group in sorted(groups):
        cases = groups[group]
        impls = {impl for by_impl in cases.values() for impl in by_impl}
        peers = [p for p in PEER_ORDER if p in impls] + sorted(impls - set(PEER_ORDER) - {"keel"})
        any_row = next(iter(next(iter(cases.values())).values()))
        unit = speed(any_row)[1]
        limit_name = any_row["limit"]
        columns = ["case", "threads", "keel"] + peers + [f"keel / {p}" for p in peers] + ["keel of limit"]
        lines += [f"### {group} ({unit}; limit: {LIMIT_TITLES.get(limit_name, limit_name)})", "",
                  "| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
        target = target_of(group)
        for (case, threads), by_impl in cases.items():
            keel = by_impl.get("keel")
            keel_speed = speed(keel)[0] if keel else None
            cells = [f"{speed(by_impl[p])[0]:.1f}" if p in by_impl else "-" for p in peers]
            ratios = [f"{keel_speed / speed(by_impl[p])[0]:.2f}" if keel and p in by_impl else "-" for p in peers]
            limit = limits.get((keel["limit"], threads)) if keel else None
            of_limit = f"{100 * keel_speed / limit:.0f}%" if keel and limit else "-"
            row_cells = [case, str(threads), f"{keel_speed:.1f}" if keel else "-"] + cells + ratios + [of_limit]
            lines.append("| " + " | ".join(row_cells) + " |")
            if target and keel:
                kind, value, peer = target
                if kind == "ratio" and peer in by_impl:
                    why = f"{keel_speed / speed(by_impl[peer])[0]:.2f}x {peer}"
                    if group.startswith("attention") and limit:
                        # The best any kernel doing flash's FLOPs could do: all of them at the FMA
                        # peak, against the composite's measured time.
                        best = by_impl[peer]["seconds"] / (keel["flops"] / (limit * 1e9))
                        why += f"; at most {best:.2f}x with every FLOP at the FMA peak"
                    verdicts.append((group, case, threads, keel_speed / speed(by_impl[peer])[0] >= value, why))
                elif kind == "limit" and limit:
                    verdicts.append((group, case, threads, keel_speed >= value * limit, f"{100 * keel_speed / limit:.0f}% of limit"))
        lines.append("")

    lines += ["### Targets", "", "| group | target | met | not met |", "|---|---|---|---|"]
    for group in sorted({v[0] for v in verdicts}):
        kind, value, peer = target_of(group)
        goal = f">= {value:.1f}x {peer}" if kind == "ratio" else f">= {100 * value:.0f}% of the limit"
        met = [f"{c} t{t}" for g, c, t, ok, _ in verdicts if g == group and ok]
        unmet = [f"{c} t{t} ({why})" for g, c, t, ok, why in verdicts if g == group and not ok]
        lines.append(f"| {group} | {goal} | {len(met)} | {', '.join(unmet) if unmet else 'none'} |")
    lines.append("")
    notes_path = env.get("KEEL_BENCH_NOTES")
    if notes_path and os.path.exists(notes_path):
        lines += [open(notes_path).read().rstrip("\n"), ""]
    lines.append("<!-- kernel_bench:end -->")
    return "\n".join(lines) + "\n"


def main():
    results_path, row_paths = sys.argv[1], sys.argv[2:]
    rows, info = read_rows(row_paths)
    section = build_section(rows, info, os.environ)
    text = open(results_path).read() if os.path.exists(results_path) else "# Benchmark results\n\n"
    pattern = re.compile(r"<!-- kernel_bench:begin.*?<!-- kernel_bench:end -->\n?", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    tmp = results_path + ".tmp"
    open(tmp, "w").write(text)
    os.replace(tmp, results_path)
    print(f"[report] wrote the CPU kernels section of {results_path}")


if __name__ == "__main__":
    main()
