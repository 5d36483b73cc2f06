"""Shared by the PyTorch peers (bench/kernels/torch_<area>.py): the same timing and JSON lines as
bench_util.h, so that report.py joins the rows of both sides."""
import json
import os
import statistics
import time


def median_seconds(body, repetitions=9, min_sample_seconds=0.02):
    """bench_util.h's median_seconds: warm-up (>= 2 calls, >= 0.1 s), then the median of
    `repetitions` samples of enough calls to last >= min_sample_seconds."""
    start = time.perf_counter()
    calls = 0
    while calls < 2 or time.perf_counter() - start < 0.1:
        body()
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    inner = max(1, int(min_sample_seconds / max(per_call, 1e-9)))
    samples = []
    for _ in range(repetitions):
        t0 = time.perf_counter()
        for _ in range(inner):
            body()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def emit(group, case, threads, seconds, flops, nbytes, limit, impl="torch"):
    print(json.dumps({"group": group, "case": case, "impl": impl, "threads": threads, "seconds": seconds,
                      "flops": flops, "bytes": nbytes, "limit": limit}), flush=True)


def thread_counts():
    """bench_util.h's thread_counts(): 1 and every processor."""
    all_threads = os.cpu_count() or 1
    return [1, all_threads] if all_threads > 1 else [1]
