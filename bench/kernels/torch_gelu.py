"""PyTorch peers of bench/kernels/gelu_bench.cpp: the same groups and cases, one JSON line per row.

Run: /usr/bin/python3 bench/kernels/torch_gelu.py [filter]
erf is torch.erf(x, out=y), gelu aten.gelu.out (approximate='none'), gelu_bwd aten.gelu_backward
(PyTorch's fused backward kernel; Keel's row is its autograd vjp of public ops). Bytes as in
gelu_bench.cpp.
"""
import sys

import torch

from torch_bench_util import emit, median_seconds, thread_counts

FILTER = sys.argv[1] if len(sys.argv) > 1 else ""
N = 1 << 24

for threads in thread_counts():
    torch.set_num_threads(threads)
    for dtype, suffix, item in [(torch.float32, "_f32", 4), (torch.bfloat16, "_bf16", 2)]:
        x = torch.randn(N).to(dtype)
        y = torch.empty(N, dtype=dtype)
        rows = [("gelu", lambda: torch.ops.aten.gelu.out(x, out=y))]
        if dtype == torch.float32:
            rows.insert(0, ("erf", lambda: torch.erf(x, out=y)))
        for name, body in rows:
            if FILTER in name + suffix:
                emit(name + suffix, "16M", threads, median_seconds(body), 0, 2 * item * N, "copy_bw")
        if FILTER in "gelu_bwd" + suffix:
            g = torch.randn(N).to(dtype)
            emit("gelu_bwd" + suffix, "16M", threads,
                 median_seconds(lambda: torch.ops.aten.gelu_backward(g, x), 5), 0, 3 * item * N, "copy_bw")
