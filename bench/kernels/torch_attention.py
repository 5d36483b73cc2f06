"""PyTorch peer of attention_bench.cpp: torch 1.13 has no fused CPU attention, so this times its
composite (q @ k^T * scale, causal masked_fill, softmax, @ v) forward and forward + backward, f32,
H = 8, with the same cases, FLOP counts and JSON lines (group attention_fwd_f32 /
attention_fwdbwd_f32, impl torch).

    /usr/bin/python3 bench/kernels/torch_attention.py [--batch B] [--dim D] [T ...]   (default B 1, D 64 and 128, T 512 1024)
"""
import json
import math
import os
import statistics
import sys
import time

import torch


def composite(q, k, v, causal):
    scores = q @ k.transpose(-1, -2) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        t = q.shape[-2]
        scores = scores.masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
    return scores.softmax(-1) @ v


def median_seconds(body):
    start = time.perf_counter()
    body()
    once = time.perf_counter() - start
    repetitions = 3 if once > 0.3 else (5 if once > 0.05 else 9)
    inner = max(1, int(0.02 / max(once, 1e-9))) if once <= 0.3 else 1
    for _ in range(2):
        body()
    samples = []
    for _ in range(repetitions):
        start = time.perf_counter()
        for _ in range(inner):
            body()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def emit(group, case, threads, seconds, flops, nbytes):
    print(json.dumps({"group": group, "case": case, "impl": "torch", "threads": threads, "seconds": seconds,
                      "flops": flops, "bytes": nbytes, "limit": "fma_f32"}), flush=True)


def run_case(batch, heads, length, dim, causal, threads):
    q, k, v, g = (torch.randn(batch, heads, length, dim) for _ in range(4))
    name = f"B{batch}_H{heads}_T{length}_D{dim}" + ("_causal" if causal else "")
    flops = 4.0 * batch * heads * length * length * dim * (0.5 if causal else 1.0)
    nbytes = 4.0 * batch * heads * length * dim * 4

    def forward():
        with torch.no_grad():
            composite(q, k, v, causal)

    def forward_backward():
        ql, kl, vl = (x.detach().requires_grad_() for x in (q, k, v))
        out = composite(ql, kl, vl, causal)
        torch.autograd.grad(out, (ql, kl, vl), g)

    emit("attention_fwd_f32", name, threads, median_seconds(forward), flops, nbytes)
    emit("attention_fwdbwd_f32", name, threads, median_seconds(forward_backward), 3.5 * flops, 2 * nbytes)


def main():
    args = sys.argv[1:]
    batch = 1
    if "--batch" in args:
        at = args.index("--batch")
        batch = int(args[at + 1])
        del args[at:at + 2]
    dims = (64, 128)
    if "--dim" in args:
        at = args.index("--dim")
        dims = (int(args[at + 1]),)
        del args[at:at + 2]
    lengths = [int(a) for a in args] or [512, 1024]
    all_threads = torch.get_num_threads()
    cores = os.cpu_count() or 1
    for threads in sorted({1, cores}):
        torch.set_num_threads(threads)
        for length in lengths:
            for dim in dims:
                for causal in (False, True):
                    run_case(batch, 8, length, dim, causal, threads)
    torch.set_num_threads(all_threads)


if __name__ == "__main__":
    main()
