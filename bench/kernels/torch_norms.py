"""PyTorch peers of bench/kernels/norms_bench.cpp: the same groups and cases, one JSON line per row.

Run: /usr/bin/python3 bench/kernels/torch_norms.py [filter]
softmax / log_softmax forward are torch.softmax / torch.log_softmax, backward aten._softmax_backward_data
and aten._log_softmax_backward_data; layer_norm is aten.native_layer_norm and
aten.native_layer_norm_backward (weight and bias). torch 1.13 has no rms_norm: its row is the
composite x * rsqrt(mean(x^2) + eps) * w and its autograd backward (dx, dw). AdamW is
torch.optim.AdamW(foreach=True) on f32 parameters. Bytes as in norms_bench.cpp.
"""
import json
import os
import sys
import time

import torch

from torch_bench_util import median_seconds  # bench_util.h's timing

FILTER = sys.argv[1] if len(sys.argv) > 1 else ""
SHAPES = [(4096, 1024), (64, 10), (64 * 128, 256), (512, 768)]



def emit(group, case, threads, seconds, flops, bytes_):
    if FILTER not in group:
        return
    print(json.dumps({"group": group, "case": case, "impl": "torch", "threads": threads, "seconds": seconds,
                      "flops": flops, "bytes": bytes_, "limit": "copy_bw"}), flush=True)


def timed(group, case, threads, bytes_, body):
    if FILTER in group:
        emit(group, case, threads, median_seconds(body), 0, bytes_)


def bench_shape(rows, cols, dtype, threads):
    suffix = "_bf16" if dtype == torch.bfloat16 else "_f32"
    case = f"{rows}x{cols}"
    size = rows * cols * (2 if dtype == torch.bfloat16 else 4)
    x = torch.randn(rows, cols).to(dtype)
    dy = torch.randn(rows, cols).to(dtype)
    w = torch.randn(cols).to(dtype)
    b = torch.randn(cols).to(dtype)
    with torch.no_grad():
        y = torch.softmax(x, -1)
        timed("softmax_fwd" + suffix, case, threads, 2 * size, lambda: torch.softmax(x, -1))
        timed("softmax_bwd" + suffix, case, threads, 3 * size,
              lambda: torch.ops.aten._softmax_backward_data(dy, y, 1, dtype))
        ly = torch.log_softmax(x, -1)
        timed("log_softmax_fwd" + suffix, case, threads, 2 * size, lambda: torch.log_softmax(x, -1))
        timed("log_softmax_bwd" + suffix, case, threads, 3 * size,
              lambda: torch.ops.aten._log_softmax_backward_data(dy, ly, 1, dtype))
        _, mean, rstd = torch.native_layer_norm(x, [cols], w, b, 1e-5)
        timed("layer_norm_fwd" + suffix, case, threads, 2 * size, lambda: torch.native_layer_norm(x, [cols], w, b, 1e-5))
        timed("layer_norm_bwd" + suffix, case, threads, 3 * size, lambda: torch.ops.aten.native_layer_norm_backward(
            dy, x, [cols], mean, rstd, w, b, [True, True, True]))

        def rms(t, weight):
            tf = t.float()
            return (tf * torch.rsqrt(tf.pow(2).mean(-1, keepdim=True) + 1e-6) * weight.float()).to(t.dtype)
        timed("rms_norm_fwd" + suffix, case, threads, 2 * size, lambda: rms(x, w))
    if FILTER in "rms_norm_bwd" + suffix:
        xg = x.clone().requires_grad_()
        wg = w.clone().requires_grad_()
        out = rms(xg, wg)
        timed("rms_norm_bwd" + suffix, case, threads, 3 * size,
              lambda: torch.autograd.grad(out, [xg, wg], dy, retain_graph=True))


def bench_adamw(count, size, threads):
    if FILTER not in "adamw_f32":
        return
    params = [torch.randn(size, requires_grad=True) for _ in range(count)]
    for p in params:
        p.grad = torch.randn(size)
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, foreach=True)
    n = count * size
    emit("adamw_f32", f"{count}x{size}", threads, median_seconds(opt.step), 12 * n, 7 * 4 * n)


def main():
    all_threads = os.cpu_count() or 1  # as omp_get_num_procs() in bench_util.h
    for threads in sorted({1, max(all_threads, 1)}):
        torch.set_num_threads(threads)
        for dtype in (torch.float32, torch.bfloat16):
            for rows, cols in SHAPES:
                bench_shape(rows, cols, dtype, threads)
        bench_adamw(1, 4 << 20, threads)
        bench_adamw(64, 65536, threads)


if __name__ == "__main__":
    main()
