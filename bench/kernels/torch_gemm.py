"""PyTorch's peer of kernel_bench_gemm: torch.matmul(a, b, out=c) on the same cases (square
row-major products and linear layers x W^T with W [N, K] row-major), f32 / bf16 / f16, 1 and all
threads, one JSON line per measurement (bench_util.h's format). FLOPs = 2 M N K.

Run: /usr/bin/python3 bench/kernels/torch_gemm.py [filter]   (GEMM_GROUPS=f32,bf16; GEMM_THREADS=1)
Debian's torch 1.13 runs f32 matmul on its generic (reference) BLAS, single-threaded, and has no
f16 matmul on the CPU (those rows are skipped with a note on stderr); bf16 goes through oneDNN.
"""
import json
import os
import sys
import time

import torch

from torch_bench_util import median_seconds  # bench_util.h's timing

CASES = [
    ("256x256x256", 256, 256, 256, False),
    ("512x512x512", 512, 512, 512, False),
    ("1024x1024x1024", 1024, 1024, 1024, False),
    ("2048x2048x2048", 2048, 2048, 2048, False),
    ("linear 64x784->256", 64, 784, 256, True),
    ("linear 64x256->10", 64, 256, 10, True),
    ("linear 256x1024->1024", 256, 1024, 1024, True),
    ("linear 1024x768->3072", 1024, 768, 3072, True),
]
GROUPS = [("gemm_f32", torch.float32, "fma_f32"), ("gemm_bf16", torch.bfloat16, "dot_bf16"),
          ("gemm_f16", torch.float16, "fma_f32")]



def main():
    filter_text = sys.argv[1] if len(sys.argv) > 1 else None
    wanted = os.environ.get("GEMM_GROUPS")
    wanted = set(wanted.split(",")) if wanted else None
    threads_all = os.cpu_count() or 1
    thread_counts = [1, threads_all] if threads_all > 1 else [1]
    if os.environ.get("GEMM_THREADS"):
        thread_counts = [int(os.environ["GEMM_THREADS"])]
    for group, dtype, limit in GROUPS:
        if wanted and group.split("_")[1] not in wanted:
            continue
        item = torch.tensor([], dtype=dtype).element_size()
        for name, m, k, n, transposed in CASES:
            if filter_text and filter_text not in name:
                continue
            a = torch.randn(m, k).to(dtype)
            w = torch.randn(n, k).to(dtype) if transposed else torch.randn(k, n).to(dtype)
            b = w.t() if transposed else w
            out = torch.empty(m, n, dtype=dtype)
            flops = 2.0 * m * n * k
            nbytes = float(item * (m * k + k * n + m * n))
            for threads in thread_counts:
                torch.set_num_threads(threads)
                body = lambda: torch.matmul(a, b, out=out)
                t0 = time.perf_counter()
                try:
                    body()
                except RuntimeError as error:  # torch 1.13 has no f16 matmul on the CPU
                    print(f"torch {group} {name}: {error}", file=sys.stderr)
                    break
                if time.perf_counter() - t0 > 0.05:  # a slow BLAS: fewer samples keep the run short
                    seconds = median_seconds(body, repetitions=3, min_sample_seconds=0)
                else:  # best of three medians, as the C++ benchmark (the machine is shared)
                    seconds = min(median_seconds(body) for _ in range(3))
                print(json.dumps({"group": group, "case": name, "impl": "torch", "threads": threads,
                                  "seconds": seconds, "flops": flops, "bytes": nbytes, "limit": limit}),
                      flush=True)


if __name__ == "__main__":
    main()
