"""PyTorch peers of bench/kernels/conv_bench.cpp: the same groups and cases, one JSON line per row.

Run: /usr/bin/python3 bench/kernels/torch_conv.py [filter]
conv2d forward is F.conv2d; the backward passes are aten.convolution_backward with one output
mask each (data, or weights + bias, as conv2d's autograd computes them); max_pool2d is F.max_pool2d;
batch_norm is F.batch_norm in training mode and aten.native_batch_norm_backward.
"""
import json
import os
import sys
import time

import torch

from torch_bench_util import median_seconds  # bench_util.h's timing
import torch.nn.functional as F



def emit(group, case, threads, seconds, flops, bytes_, limit):
    print(json.dumps({"group": group, "case": case, "impl": "torch", "threads": threads, "seconds": seconds,
                      "flops": flops, "bytes": bytes_, "limit": limit}), flush=True)


CONVS = [
    ("mnist_conv1_64x1x28x28_o32_k3", 64, 1, 28, 28, 32, 3, 0),
    ("mnist_conv2_64x32x26x26_o64_k3", 64, 32, 26, 26, 64, 3, 0),
    ("resnet_8x64x56x56_o64_k3_p1", 8, 64, 56, 56, 64, 3, 1),
]


def bench_conv(spec, dtype, threads):
    name, n, c, h, w, o, k, pad = spec
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    flops = 2.0 * n * o * oh * ow * c * k * k
    suffix, limit = ("_bf16", "dot_bf16") if dtype == torch.bfloat16 else ("_f32", "fma_f32")
    x = torch.randn(n, c, h, w).to(dtype)
    wt = torch.randn(o, c, k, k).to(dtype)
    b = torch.randn(o).to(dtype)
    dy = torch.randn(n, o, oh, ow).to(dtype)
    args = ([o], [1, 1], [pad, pad], [1, 1], False, [0, 0], 1)
    with torch.no_grad():
        emit("conv2d_fwd" + suffix, name, threads, median_seconds(lambda: F.conv2d(x, wt, b, padding=pad)), flops, 0,
             limit)
        emit("conv2d_bwd_data" + suffix, name, threads, median_seconds(
            lambda: torch.ops.aten.convolution_backward(dy, x, wt, *args, [True, False, False])), flops, 0, limit)
        emit("conv2d_bwd_weights" + suffix, name, threads, median_seconds(
            lambda: torch.ops.aten.convolution_backward(dy, x, wt, *args, [False, True, True])), flops, 0, limit)


def bench_max_pool(n, c, h, w, threads):
    x = torch.randn(n, c, h, w)
    name = f"{n}x{c}x{h}x{w}_k2"
    bytes_ = 4.0 * (n * c * h * w + n * c * (h // 2) * (w // 2))
    with torch.no_grad():
        emit("max_pool2d_f32", name, threads, median_seconds(lambda: F.max_pool2d(x, 2)), 0, bytes_, "copy_bw")


def bench_batch_norm(n, c, h, w, threads):
    name = f"{n}x{c}x{h}x{w}"
    x, weight, bias = torch.randn(n, c, h, w), torch.randn(c), torch.randn(c)
    rm, rv = torch.zeros(c), torch.ones(c)
    with torch.no_grad():
        emit("batch_norm_fwd_f32", name, threads, median_seconds(
            lambda: F.batch_norm(x, rm, rv, weight, bias, True, 0.1, 1e-5)), 0, 4.0 * 2 * n * c * h * w, "copy_bw")
        _, save_mean, save_invstd = torch.ops.aten.native_batch_norm(x, weight, bias, rm, rv, True, 0.1, 1e-5)
        dy = torch.randn(n, c, h, w)
        emit("batch_norm_bwd_f32", name, threads, median_seconds(
            lambda: torch.ops.aten.native_batch_norm_backward(dy, x, weight, rm, rv, save_mean, save_invstd, True, 1e-5,
                                                              [True, True, True])), 0, 4.0 * 3 * n * c * h * w,
             "copy_bw")


def main():
    wanted = sys.argv[1] if len(sys.argv) > 1 else ""
    cores = os.cpu_count() or 1
    for threads in ([1, cores] if cores > 1 else [1]):
        torch.set_num_threads(threads)
        for spec in CONVS:
            if wanted in "conv_f32":
                bench_conv(spec, torch.float32, threads)
            if wanted in "conv_bf16":
                bench_conv(spec, torch.bfloat16, threads)
        if wanted in "pool":
            bench_max_pool(64, 64, 24, 24, threads)
        if wanted in "norm":
            bench_batch_norm(64, 32, 26, 26, threads)
            bench_batch_norm(8, 64, 56, 56, threads)


if __name__ == "__main__":
    main()
