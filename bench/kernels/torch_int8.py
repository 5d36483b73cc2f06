"""PyTorch peer of kernel_bench_int8 (bench/kernels/int8_bench.cpp): torch.ops.quantized.linear.

Run: /usr/bin/python3 bench/kernels/torch_int8.py [filter]   (prints the same JSON lines)

Debian's torch 1.13 has no fbgemm (torch.backends.quantized.supported_engines is qnnpack, onednn,
none); the onednn engine is used. Not quite Keel's computation, which the report should say:
torch's weight is prepacked once outside the timing loop (as in kernel_bench_int8's "keel" and
"onednn" rows; its "*_per_call" rows pack b in every call), and its output is requantized u8 (quantized::linear has no f32 output), where
kernel_bench_int8 times the dequantized f32 output. Same u8 activations with zero point 128, s8
weights with zero point 0, per-tensor scales; ops = 2 M N K.
"""
import json
import os
import sys
import time

import torch

from torch_bench_util import median_seconds  # bench_util.h's timing

CASES = [
    ("256x256x256", 256, 256, 256),
    ("512x512x512", 512, 512, 512),
    ("1024x1024x1024", 1024, 1024, 1024),
    ("2048x2048x2048", 2048, 2048, 2048),
    ("linear 64x784->256", 64, 784, 256),
    ("linear 256x1024->1024", 256, 1024, 1024),
]



def main():
    name_filter = sys.argv[1] if len(sys.argv) > 1 else None
    engines = torch.backends.quantized.supported_engines
    engine = "fbgemm" if "fbgemm" in engines else "onednn" if "onednn" in engines else None
    if engine is None:
        print(f"no x86 quantized engine in {engines}", file=sys.stderr)
        return
    torch.backends.quantized.engine = engine
    print(f"torch {torch.__version__}, quantized engine {engine}", file=sys.stderr)
    all_threads = os.cpu_count() or 1  # as bench_util.h's thread_counts(): 1 and every processor
    thread_counts = [1, all_threads] if all_threads > 1 else [1]
    for case, m, k, n in CASES:
        if name_filter and name_filter not in case:
            continue
        x = torch._make_per_tensor_quantized_tensor(torch.randint(0, 256, (m, k), dtype=torch.uint8), 0.02, 128)
        w = torch._make_per_tensor_quantized_tensor(torch.randint(-128, 128, (n, k), dtype=torch.int8), 0.005, 0)
        packed = torch.ops.quantized.linear_prepack(w, None)
        ops = 2.0 * m * n * k
        nbytes = float(m * k + k * n + m * n)
        for threads in thread_counts:
            torch.set_num_threads(threads)
            seconds = median_seconds(lambda: torch.ops.quantized.linear(x, packed, 1.0, 128))
            print(json.dumps({"group": "gemm_int8", "case": case, "impl": "torch", "threads": threads,
                              "seconds": seconds, "flops": ops, "bytes": nbytes, "limit": "dot_int8"}), flush=True)


if __name__ == "__main__":
    main()
