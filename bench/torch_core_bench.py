#!/usr/bin/env python3
"""Tensor-core CPU benchmark, the PyTorch side of bench/core_bench.cpp: the same cases, sizes,
byte counts and statistics (median of 9 timed runs after >= 2 warm-up calls and >= 0.25 s), the same JSON lines.

  (a) overhead: torch.add of two 1-element f32 tensors, ns per op
  (b) torch.Tensor.copy_ of 16 / 64 / 256 MiB (PyTorch's own copy; the machine limit used for
      the fractions is core_bench's memcpy probe)
  (c) elementwise on 16M f32: "elementwise" rows write into a preallocated out= tensor,
      "elementwise_op" rows call the allocating op
  (d) reductions of a [4096, 4096] f32 tensor

Threads: torch.set_num_threads(2) unless KEEL_BENCH_THREADS says otherwise.
"""
import json
import os
import time

import torch

REPETITIONS = 9
WARMUP = 2
WARMUP_SECONDS = 0.25  # as core_bench: fresh large buffers are slow for a few passes
ELEMENTS = 1 << 24


def median_seconds(body, inner=1):
    warm_start = time.perf_counter()
    warm = 0
    while warm < WARMUP or time.perf_counter() - warm_start < WARMUP_SECONDS:
        body()
        warm += 1
    times = []
    for _ in range(REPETITIONS):
        start = time.perf_counter()
        for _ in range(inner):
            body()
        times.append((time.perf_counter() - start) / inner)
    times.sort()
    return times[len(times) // 2]


def report(group, name, nbytes, seconds):
    if nbytes:
        line = {"group": group, "name": name, "bytes": nbytes, "seconds": seconds,
                "value": round(nbytes / seconds / 1e9, 4), "unit": "GB/s"}
    else:
        line = {"group": group, "name": name, "bytes": 0, "seconds": seconds,
                "value": round(seconds * 1e9, 2), "unit": "ns"}
    print(json.dumps(line), flush=True)


def main():
    threads = int(os.environ.get("KEEL_BENCH_THREADS", "2"))
    torch.set_num_threads(threads)
    print(json.dumps({"group": "info", "name": "threads", "value": torch.get_num_threads(),
                      "torch": torch.__version__, "capability": torch.backends.cpu.get_cpu_capability()
                      if hasattr(torch.backends, "cpu") else ""}), flush=True)
    torch.manual_seed(0)

    # (a) overhead
    a1, b1 = torch.full((1,), 1.5), torch.full((1,), 2.5)
    report("overhead", "add_1_element_f32", 0, median_seconds(lambda: torch.add(a1, b1), inner=20000))

    # (b) copy
    for mib in (16, 64, 256):
        n = (mib << 20) // 4
        src, dst = torch.ones(n), torch.zeros(n)
        report("copy", f"torch_copy_{mib}MiB", 2 * n * 4, median_seconds(lambda: dst.copy_(src)))
        del src, dst

    # (c) elementwise
    a = torch.rand(ELEMENTS) * 2 - 1
    b = torch.rand(ELEMENTS) * 2 - 1
    out = torch.zeros(ELEMENTS)
    buffers = {}  # the bf16 output is made at its first call, as in core_bench

    def copy_to_bf16():
        if "bf16" not in buffers:
            buffers["bf16"] = torch.zeros(ELEMENTS, dtype=torch.bfloat16)
        buffers["bf16"].copy_(a)

    f = ELEMENTS * 4
    cases = [
        ("add", 3 * f, lambda: torch.add(a, b, out=out), lambda: torch.add(a, b)),
        ("mul", 3 * f, lambda: torch.mul(a, b, out=out), lambda: torch.mul(a, b)),
        ("add_scalar", 2 * f, lambda: torch.add(a, 2.0, out=out), lambda: torch.add(a, 2.0)),
        ("relu", 2 * f, lambda: torch.clamp_min(a, 0.0, out=out), lambda: torch.relu(a)),
        ("exp", 2 * f, lambda: torch.exp(a, out=out), lambda: torch.exp(a)),
        ("sigmoid", 2 * f, lambda: torch.sigmoid(a, out=out), lambda: torch.sigmoid(a)),
        ("copy_f32_to_bf16", f + f // 2, copy_to_bf16, lambda: a.to(torch.bfloat16)),
    ]
    for name, nbytes, kernel, _ in cases:
        report("elementwise", name, nbytes, median_seconds(kernel))
    for name, nbytes, _, op in cases:
        report("elementwise_op", name, nbytes, median_seconds(op))
    del out, buffers

    # (c') 16-bit floats: computed in f32, stored in 16 bits (bytes: 2 per element and operand)
    for dtype, tag in ((torch.bfloat16, "bf16"), (torch.float16, "f16")):
        a16, b16 = a.to(dtype), b.to(dtype)
        out16 = torch.zeros(ELEMENTS, dtype=dtype)
        h = ELEMENTS * 2
        report("elementwise_16bit", f"add_{tag}", 3 * h, median_seconds(lambda: torch.add(a16, b16, out=out16)))
        try:  # PyTorch 1.13 has no CPU exp for float16: the row is then left out
            torch.exp(a16[:1], out=out16[:1])
            report("elementwise_16bit", f"exp_{tag}", 2 * h, median_seconds(lambda: torch.exp(a16, out=out16)))
        except RuntimeError:
            pass
        del a16, b16, out16

    # (d) reductions
    x = torch.rand(4096, 4096) * 2 - 1
    size = x.numel() * 4
    report("reduction", "sum_all", size + 4, median_seconds(lambda: torch.sum(x)))
    report("reduction", "argmax_dim0", size + 4096 * 8, median_seconds(lambda: torch.argmax(x, 0)))
    report("reduction", "sum_dim1", size + 4096 * 4, median_seconds(lambda: torch.sum(x, 1)))
    report("reduction", "sum_dim0", size + 4096 * 4, median_seconds(lambda: torch.sum(x, 0)))
    report("reduction", "amax_all", size + 4, median_seconds(lambda: torch.amax(x)))


if __name__ == "__main__":
    main()
