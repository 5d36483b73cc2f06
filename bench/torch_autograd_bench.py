#!/usr/bin/env python3
"""Autograd overhead benchmark, the PyTorch side (bench/autograd_bench.cpp is Keel's).

The same chain of 100 tiny ops on a 1-element f32 tensor that requires grad (114 ops: the
seventh case is neg + exp), forward then backward, from Python; ns per op, median of 9 runs of
2000 chains. Then the resident set size after every 1e4 of 1e5 chains. One JSON object per line.
"""
import json
import resource
import time

import torch

CHAIN_LENGTH = 100


def chain(x, w):
    y = x
    for i in range(CHAIN_LENGTH):
        case = i % 7
        if case == 0:
            y = y * 0.5
        elif case == 1:
            y = y + 1.0
        elif case == 2:
            y = torch.sin(y)
        elif case == 3:
            y = y * w
        elif case == 4:
            y = torch.tanh(y)
        elif case == 5:
            y = y - w
        else:
            y = torch.exp(-y)
    return y


def step(x, w):
    y = chain(x, w)
    y.backward()
    x.grad = None
    w.grad = None


def rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main():
    ops = sum(2 if i % 7 == 6 else 1 for i in range(CHAIN_LENGTH))
    x = torch.full((1,), 0.3, requires_grad=True)
    w = torch.full((1,), 0.7, requires_grad=True)
    for _ in range(500):
        step(x, w)
    chains = 2000

    def per_op_ns(body):
        """ns per op of `chains` calls of body, for each of 9 runs, sorted."""
        times = []
        for _ in range(9):
            start = time.perf_counter()
            for _ in range(chains):
                body(x, w)
            times.append((time.perf_counter() - start) / chains / ops * 1e9)
        return sorted(times)

    per_op = per_op_ns(step)
    print(json.dumps({"group": "autograd", "name": "chain_fwd_bwd", "ops": ops, "value": round(per_op[4], 1),
                      "min": round(per_op[0], 1), "max": round(per_op[-1], 1), "unit": "ns/op",
                      "torch": torch.__version__}), flush=True)
    forward = per_op_ns(chain)
    print(json.dumps({"group": "autograd", "name": "chain_fwd", "ops": ops, "value": round(forward[4], 1),
                      "unit": "ns/op"}), flush=True)
    start_rss = rss_kib()
    samples = []
    for i in range(1, 100001):
        step(x, w)
        if i % 10000 == 0:
            samples.append(rss_kib())
    print(json.dumps({"group": "autograd", "name": "rss_kib", "start": start_rss, "samples": samples, "unit": "KiB"}))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
