#!/usr/bin/env python3
"""Training parity, step 2 of 2: redoes train_parity_dump's runs in torch 1.13 and compares.

For every run: the same architecture as torch modules (torch.nn.Sequential for the MLP; the
SmallCNN of compare_nn_torch.py), the initial weights loaded with load_state_dict(strict=True)
(so the state_dict names must match as well), the same 20 batches, torch.optim.SGD / AdamW with
the same options and a LambdaLR written from WarmupCosine's formula (docs/optim.md), and per
step: forward, cross_entropy, backward, optimizer step, schedule step. Compares the lr of every
step, the loss of every step and the trained model's loss in evaluation mode (relative 1e-4 for
f32, 1e-10 for f64), and the final parameters and BatchNorm buffers (relative to each tensor's
largest value, same tolerances; num_batches_tracked exactly). Prints the max relative errors per run and
fails naming the run, the step and both values on any mismatch.
Usage: compare_torch_train.py <folder written by train_parity_dump>
"""
import json
import math
import os
import sys

import torch
import torch.nn as tnn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_nn_torch import load, small_cnn  # noqa: E402  (one reader of the dump, one torch SmallCNN)
from compare_torch_optim import warmup_cosine_lambda  # noqa: E402  (one WarmupCosine in torch)

torch.set_num_threads(1)

# Loss of every step: the 1e-4 relative for f32; f64 has rounding to spare, so much tighter.
LOSS_RTOL = {"float32": 1e-4, "float64": 1e-10}
# Final parameters and running statistics, relative to each tensor's largest value (an element
# that passes near zero has no meaningful relative error of its own).
STATE_RTOL = {"float32": 1e-4, "float64": 1e-10}
LR_RTOL = 1e-12  # both compute the schedule in double

def build(model):
    a = model["args"]
    if model["kind"] == "MLP":
        sizes, layers = a["sizes"], []
        for i in range(len(sizes) - 1):
            layers.append(tnn.Linear(sizes[i], sizes[i + 1]))
            if i + 2 < len(sizes):
                layers.append(tnn.ReLU())
        return tnn.Sequential(*layers)
    if model["kind"] == "SmallCNN":
        return small_cnn(a["channels"], convs=a["convs_per_stage"], size=a["image_size"], dropout=0.0)
    raise ValueError(f"unknown model kind {model['kind']}")


def optimizer_of(run, params):
    o = dict(run["options"])
    if run["optimizer"] == "SGD":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"],
                               nesterov=o["nesterov"], foreach=False)
    if run["optimizer"] == "AdamW":
        return torch.optim.AdamW(params, lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"],
                                 weight_decay=o["weight_decay"], foreach=False)
    raise ValueError(f"unknown optimizer {run['optimizer']}")


def check_run(run, model, get, failures):
    dtype = getattr(torch, run["dtype"])
    rid = run["id"]
    net = build(model).to(dtype)
    initial = {name: get(entry) for name, entry in model["initial"].items()}
    net.load_state_dict(initial, strict=True)  # copies (and casts) into net's own tensors
    net.train()
    opt = optimizer_of(run, net.parameters())
    base = opt.param_groups[0]["lr"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine_lambda(base, run["schedule"]))
    inputs = get(model["inputs"]).to(dtype)
    labels = get(model["labels"]).to(torch.long)

    keel_losses, keel_lrs = get(run["losses"]), get(run["lrs"])
    worst = {"loss": 0.0, "lr": 0.0, "state": 0.0}
    for step in range(inputs.shape[0]):
        lr = opt.param_groups[0]["lr"]
        loss = torch.nn.functional.cross_entropy(net(inputs[step]), labels[step])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()

        k_lr, k_loss, t_loss = keel_lrs[step].item(), keel_losses[step].item(), loss.item()
        rel_lr = abs(k_lr - lr) / abs(lr)
        worst["lr"] = max(worst["lr"], rel_lr)
        if not rel_lr <= LR_RTOL:
            failures.append(f"{rid} step {step}: lr keel {k_lr!r} vs torch {lr!r}")
        rel = abs(k_loss - t_loss) / abs(t_loss)
        worst["loss"] = max(worst["loss"], rel)
        if not rel <= LOSS_RTOL[run["dtype"]]:
            failures.append(f"{rid} step {step}: loss keel {k_loss!r} vs torch {t_loss!r} "
                            f"(relative {rel:.2e} > {LOSS_RTOL[run['dtype']]:g})")

    # The running statistics at work: the trained model in evaluation mode on the first batch.
    net.eval()
    with torch.no_grad():
        t_eval = torch.nn.functional.cross_entropy(net(inputs[0]), labels[0]).item()
    k_eval = run["eval_loss"]
    rel = abs(k_eval - t_eval) / abs(t_eval)
    worst["loss"] = max(worst["loss"], rel)
    if not rel <= LOSS_RTOL[run["dtype"]]:
        failures.append(f"{rid} after training: eval-mode loss keel {k_eval!r} vs torch {t_eval!r} "
                        f"(relative {rel:.2e} > {LOSS_RTOL[run['dtype']]:g})")

    expected = net.state_dict()
    if set(expected) != set(run["final"]):
        failures.append(f"{rid}: final state names differ: keel {sorted(run['final'])} vs torch {sorted(expected)}")
    for name, entry in run["final"].items():
        if name not in expected:
            continue
        a, e = get(entry), expected[name].detach().to(torch.float64)
        if tuple(a.shape) != tuple(e.shape):
            failures.append(f"{rid}: final {name}: shape {list(a.shape)} vs torch {list(e.shape)}")
            continue
        if name.endswith("num_batches_tracked"):
            if not torch.equal(a, e):
                failures.append(f"{rid}: final {name}: keel {a.item()} vs torch {e.item()}")
            continue
        scale = e.abs().max().item() or 1.0
        diff = (a - e).abs()
        rel = diff.max().item() / scale
        worst["state"] = max(worst["state"], rel)
        if not rel <= STATE_RTOL[run["dtype"]]:
            i = int(diff.reshape(-1).argmax())
            failures.append(f"{rid}: final {name} element {i}: keel {a.reshape(-1)[i].item()!r} vs torch "
                            f"{e.reshape(-1)[i].item()!r} (relative to the tensor's max {rel:.2e} > "
                            f"{STATE_RTOL[run['dtype']]:g})")
    first, last = keel_losses[0].item(), keel_losses[-1].item()
    verdict = f"MISMATCH ({len(failures)})" if failures else "ok"
    print(f"  {rid:32s} loss {first:.4f} -> {last:.4f}   max rel. error: loss {worst['loss']:.1e}, "
          f"final state {worst['state']:.1e}, lr {worst['lr']:.1e}   {verdict}")


def main():
    index, get = load(sys.argv[1])
    models = {m["id"]: m for m in index["models"]}
    print(f"training parity: {len(index['runs'])} runs of 20 steps against torch {torch.__version__}")
    failed = {}
    for run in index["runs"]:
        failures = []
        try:
            check_run(run, models[run["model"]], get, failures)
        except Exception as error:  # a torch-side error (a name mismatch in load_state_dict) is a failure too
            failures.append(f"{run['id']}: {type(error).__name__}: {error}")
            print(f"  {run['id']:32s} ERROR")
        if failures:
            failed[run["id"]] = failures
    if failed:
        print(f"FAILED: {len(failed)} of {len(index['runs'])} runs differ from torch "
              f"(the first mismatches of each):", file=sys.stderr)
        for failures in failed.values():
            # The first mismatch of each kind (lr, loss, final state, other) and how many in all.
            firsts = {}
            for line in failures:
                kind = next((k for k in (": lr ", ": loss ", "eval-mode", ": final ") if k in line), "other")
                firsts.setdefault(kind, line)
            for line in firsts.values():
                print("  " + line, file=sys.stderr)
            print(f"    ({len(failures)} mismatches in this run)", file=sys.stderr)
        sys.exit(1)
    print("all runs match")


if __name__ == "__main__":
    main()
