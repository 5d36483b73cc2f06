#!/usr/bin/env python3
"""Training-step benchmark, the PyTorch side (bench/train/train_bench.cpp is Keel's).

    torch_train.py cnn [--threads N] [--samples S]   Fashion-MNIST CNN step: images/s
    torch_train.py gpt [--threads N] [--samples S]   GPT step: tokens/s

The same models, batches, optimizer settings and timing as train_bench.cpp: one model per
process (so the peak RSS, resource.getrusage's ru_maxrss, covers that model alone); a step is
forward, cross_entropy, backward, AdamW step, zero_grad (set_to_none, torch's default) on a fixed
random batch; warm-up (>= 3 steps and >= 0.5 s), then S samples of k steps (each >= 0.3 s), the
median. PyTorch gets its best CPU settings: torch.set_num_threads(N), and the caller sets
OMP_WAIT_POLICY=PASSIVE. Prints one JSON line in train_bench's format.
"""
import argparse
import json
import math
import re
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def small_cnn():
    """nn::SmallCNN({.channels = {32, 64}, .convs_per_stage = 1, .dropout = 0.25, .hidden = 128})
    (nn/models/cnn.cpp), the main job's model."""
    features = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))
    classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
                               nn.Dropout(0.25), nn.Linear(128, 10))
    return nn.Sequential(features, classifier)


# nanoGPT (Karpathy's model.py), with the explicit causal softmax attention: torch 1.13 has no
# scaled_dot_product_attention.
class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size, bias):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.register_buffer("mask", torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))
                             .view(1, 1, block_size, block_size), persistent=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(~self.mask[:, :, :T, :T], float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, n_embd, bias):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, block_size, bias):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, elementwise_affine=True)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size, bias)
        self.ln_2 = nn.LayerNorm(n_embd, elementwise_affine=True)
        self.mlp = MLP(n_embd, bias)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd, bias=True):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head, block_size, bias) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))
            elif p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)

    def loss(self, idx, targets):
        T = idx.size(1)
        pos = torch.arange(0, T, dtype=torch.long)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def time_steps(step, samples):
    warm_start = time.perf_counter()
    warm_steps = 0
    while warm_steps < 3 or time.perf_counter() - warm_start < 0.5:
        step()
        warm_steps += 1
    per_step = (time.perf_counter() - warm_start) / warm_steps
    steps_per_sample = max(1, int(0.3 / per_step + 0.5))
    taken = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(steps_per_sample):
            step()
        taken.append((time.perf_counter() - start) / steps_per_sample)
    return sorted(taken)[len(taken) // 2], steps_per_sample, taken


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=["cnn", "gpt"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--samples", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.model == "cnn":
        batch = 128
        model = small_cnn()
        optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
        inputs, targets = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
        loss_of = lambda: F.cross_entropy(model(inputs), targets)
        items, unit = batch, "images/s"
    else:
        batch, length, vocab = 8, 128, 256
        model = GPT(vocab, length, n_layer=4, n_head=4, n_embd=256, bias=True)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
        inputs, targets = torch.randint(0, vocab, (batch, length)), torch.randint(0, vocab, (batch, length))
        loss_of = lambda: model.loss(inputs, targets)
        items, unit = batch * length, "tokens/s"
    model.train()

    def step():
        loss_of().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    median, steps_per_sample, taken = time_steps(step, args.samples)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    # Which BLAS runs f32 matmul (Debian's torch: "generic", the reference BLAS, single-threaded).
    blas = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    print(json.dumps({"group": "train", "case": args.model, "impl": "torch", "threads": args.threads,
                      "seconds": median, "items_per_step": items, "items_per_s": items / median, "unit": unit,
                      "samples": [round(s, 6) for s in taken], "steps_per_sample": steps_per_sample,
                      "peak_rss_mb": round(peak_rss_mb, 1), "torch": torch.__version__,
                      "blas": blas.group(1) if blas else "?"}), flush=True)


if __name__ == "__main__":
    main()
