#!/usr/bin/env python3
"""Optimizer parity, step 2 of 2: redoes optim_parity_dump's runs in torch (1.13) and compares.

Optimizers: torch.optim.SGD / Adam / AdamW with the same two parameter groups, the same initial
parameters and the same gradient sequences (None where Keel's parameter had no grad); every
parameter is compared after every step. Schedules: torch.optim.lr_scheduler's StepLR,
ExponentialLR, OneCycleLR (lr and momentum / beta1) and ReduceLROnPlateau on the same metric
sequence; WarmupCosine, which torch lacks, as the LambdaLR a torch user writes for it. Clipping:
torch.nn.utils.clip_grad_norm_ / clip_grad_value_. GradScaler: torch.cuda.amp.GradScaler's own
Python logic, with its two CUDA kernels (_amp_foreach_non_finite_check_and_unscale_,
_amp_update_scale_), which this CPU torch lacks, written here from ATen's AmpKernels.cu (and its
per-device replicator without the CUDA assert).

Fails on a relative difference above 1e-6 (f64; 1e-5 for the f32 runs).
Usage: compare_torch_optim.py <folder written by optim_parity_dump>
"""
import json
import math
import sys
import warnings

import torch

warnings.filterwarnings("ignore")
failures = []


def tol_for(dtype):
    return 1e-5 if dtype == "float32" else 1e-6


def compare(what, actual, expected, rtol):
    """actual: Keel's numbers; expected: torch's. Relative difference with a tiny atol for zeros."""
    a = torch.tensor(actual, dtype=torch.float64).reshape(-1)
    e = torch.as_tensor(expected).detach().to(torch.float64).reshape(-1)
    if a.shape != e.shape:
        failures.append(f"{what}: {a.numel()} values, torch has {e.numel()}")
        return 0.0
    same_special = (torch.isnan(a) & torch.isnan(e)) | (torch.isinf(a) & (a == e))
    diff = (a - e).abs()
    bad = ~same_special & ~(diff <= rtol * e.abs() + 1e-12)
    rel = torch.where(same_special, torch.zeros_like(diff), diff / e.abs().clamp_min(1e-12))
    worst = rel.max().item() if rel.numel() else 0.0
    if bad.any():
        i = int(bad.nonzero()[0])
        failures.append(f"{what}: element {i}: keel {a[i].item()!r} vs torch {e[i].item()!r}")
    return worst


def optimizer_of(name, groups):
    cls = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}[name]
    torch_groups = []
    for params, options in groups:
        options = dict(options)
        if "betas" in options:
            options["betas"] = tuple(options["betas"])
        torch_groups.append(dict(params=params, **options))
    kwargs = {} if name == "SGD" else {"foreach": False}
    return cls(torch_groups, **kwargs)


def check_optimizer(case):
    dtype = getattr(torch, case["dtype"])
    rtol = tol_for(case["dtype"])
    params = [torch.tensor(p["values"], dtype=dtype).reshape(p["shape"]).requires_grad_() for p in case["params0"]]
    groups = [([params[i] for i in g["params"]], g["options"]) for g in case["groups"]]
    opt = optimizer_of(case["optimizer"], groups)
    worst = 0.0
    for step, (grads, after) in enumerate(zip(case["grads"], case["params"])):
        for p, g in zip(params, grads):
            p.grad = None if g is None else torch.tensor(g, dtype=dtype).reshape(p.shape)
        opt.step()
        opt.zero_grad()
        for k, (p, values) in enumerate(zip(params, after)):
            worst = max(worst, compare(f"{case['name']} step {step} param {k}", values, p, rtol))
    return worst


def warmup_cosine_lambda(base, o):
    """WarmupCosine as a LambdaLR factor (docs/optim.md): linear warmup from start_factor * base,
    then cosine from base down to min_lr at total_steps, then min_lr."""
    w, t, min_lr, start = o["warmup_steps"], o["total_steps"], o["min_lr"], o["start_factor"]

    def factor(s):
        if s < w:
            return start + (1 - start) * s / w
        if s < t:
            return (min_lr + (base - min_lr) * 0.5 * (1 + math.cos(math.pi * (s - w) / (t - w)))) / base
        return min_lr / base
    return factor


def scheduler_of(case, opt):
    o = case["options"]
    kind = case["scheduler"]
    S = torch.optim.lr_scheduler
    if kind == "WarmupCosine":
        return S.LambdaLR(opt, [warmup_cosine_lambda(base, o) for base in case["group_lrs"]])
    if kind == "StepLR":
        return S.StepLR(opt, step_size=o["step_size"], gamma=o["gamma"])
    if kind == "ExponentialLR":
        return S.ExponentialLR(opt, gamma=o["gamma"])
    if kind == "OneCycleLR":
        return S.OneCycleLR(opt, **o)
    if kind == "ReduceLROnPlateau":
        return S.ReduceLROnPlateau(opt, **o)
    raise ValueError(f"unknown scheduler {kind}")


def check_schedule(case):
    params = [torch.zeros(2, dtype=torch.float64, requires_grad=True) for _ in case["group_lrs"]]
    if case["optimizer"] == "SGD":
        opt = torch.optim.SGD([{"params": [p], "lr": lr, "momentum": case["momentum"]}
                               for p, lr in zip(params, case["group_lrs"])])
    else:
        opt = torch.optim.Adam([{"params": [p], "lr": lr} for p, lr in zip(params, case["group_lrs"])])
    sched = scheduler_of(case, opt)

    def momenta():
        return [g["momentum"] if "momentum" in g else g["betas"][0] for g in opt.param_groups]

    lrs, moms = [], []
    if case["scheduler"] == "ReduceLROnPlateau":
        for m in case["metrics"]:
            sched.step(m)
            lrs.append([g["lr"] for g in opt.param_groups])
            moms.append(momenta())
    else:
        for epoch in range(len(case["lrs"])):
            if epoch:
                opt.step()
                sched.step()
            lrs.append([g["lr"] for g in opt.param_groups])
            moms.append(momenta())
    worst = compare(f"{case['name']} lrs", case["lrs"], torch.tensor(lrs, dtype=torch.float64), 1e-6)
    return max(worst, compare(f"{case['name']} momenta", case["momenta"], torch.tensor(moms, dtype=torch.float64), 1e-6))


def check_clip(case):
    params = []
    for shape, g in zip(case["shapes"], case["grads"]):
        p = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        p.grad = None if g is None else torch.tensor(g, dtype=torch.float64).reshape(shape)
        params.append(p)
    worst = 0.0
    if case["kind"] == "norm":
        total = torch.nn.utils.clip_grad_norm_(params, case["limit"], case["norm_type"])
        worst = compare(f"{case['name']} total norm", [case["total"]], total, 1e-6)
    else:
        torch.nn.utils.clip_grad_value_(params, case["limit"])
    for k, (p, clipped) in enumerate(zip(params, case["clipped"])):
        if (p.grad is None) != (clipped is None):
            failures.append(f"{case['name']} param {k}: grad presence differs")
        elif clipped is not None:
            worst = max(worst, compare(f"{case['name']} grad {k}", clipped, p.grad, 1e-6))
    return worst


# ATen's AmpKernels.cu, in Python (the CPU build of torch 1.13 has no kernel for these).
def non_finite_check_and_unscale_(grads, found_inf, inv_scale):
    for g in grads:
        if not torch.isfinite(g).all():
            found_inf.fill_(1.0)
        g.mul_(inv_scale)


def update_scale_(scale, growth_tracker, found_inf, growth_factor, backoff_factor, growth_interval):
    if found_inf.item():
        scale.mul_(backoff_factor)
        growth_tracker.fill_(0)
    else:
        successful = growth_tracker.item() + 1
        if successful == growth_interval:
            new_scale = torch.tensor(scale.item() * growth_factor, dtype=torch.float32)
            if torch.isfinite(new_scale):
                scale.fill_(new_scale.item())
            growth_tracker.fill_(0)
        else:
            growth_tracker.fill_(successful)
    return scale


def check_scaler(case):
    torch._amp_foreach_non_finite_check_and_unscale_ = non_finite_check_and_unscale_
    torch._amp_update_scale_ = update_scale_
    from collections import defaultdict
    from torch.cuda.amp import grad_scaler as gs
    class CpuReplicator(gs._MultiDeviceReplicator):  # the original asserts a CUDA tensor
        def __init__(self, master_tensor):
            self.master = master_tensor
            self._per_device_tensors = {}
    gs._MultiDeviceReplicator = CpuReplicator
    o = case["options"]
    scaler = gs.GradScaler(enabled=False)  # no CUDA here: set up as the enabled constructor does
    scaler._enabled = True
    scaler._init_scale = o["init_scale"]
    scaler._scale = None
    scaler._growth_factor = o["growth_factor"]
    scaler._backoff_factor = o["backoff_factor"]
    scaler._growth_interval = o["growth_interval"]
    scaler._init_growth_tracker = 0
    scaler._growth_tracker = None
    scaler._per_optimizer_states = defaultdict(gs._refresh_per_optimizer_state)
    scaler._lazy_init_scale_growth_tracker(torch.device("cpu"))
    w = torch.tensor(case["params0"], dtype=torch.float32, requires_grad=True)
    opt = torch.optim.SGD([w], lr=case["lr"], momentum=case["momentum"])
    worst = 0.0
    for s, grads in enumerate(case["grads"]):
        worst = max(worst, compare(f"scaler step {s} scale before", [case["scale_before"][s]], scaler._scale, 1e-6))
        w.grad = torch.tensor(grads, dtype=torch.float32)
        scaler.step(opt)
        state = scaler._per_optimizer_states[id(opt)]
        stepped = sum(v.item() for v in state["found_inf_per_device"].values()) == 0
        if stepped != case["stepped"][s]:
            failures.append(f"scaler step {s}: keel stepped={case['stepped'][s]}, torch stepped={stepped}")
        scaler.update()
        worst = max(worst, compare(f"scaler step {s} scale after", [case["scale_after"][s]], scaler._scale, 1e-6))
        worst = max(worst, compare(f"scaler step {s} params", case["params"][s], w, 1e-5))
    return worst


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    with open(f"{sys.argv[1]}/index.json") as f:
        index = json.load(f)
    for section, check in (("optimizers", check_optimizer), ("schedules", check_schedule),
                           ("clips", check_clip), ("scalers", check_scaler)):
        for case in index[section]:
            before = len(failures)
            try:
                worst = check(case)
            except Exception as error:  # a crash in one case is a failure, not the end of the run
                failures.append(f"{case['name']}: {type(error).__name__}: {error}")
                worst = float("nan")
            status = "ok" if len(failures) == before else "FAIL"
            print(f"{section:10s} {case['name']:40s} max rel err {worst:.3g}  {status}")
    if failures:
        print(f"\n{len(failures)} mismatches:")
        for line in failures[:40]:
            print("  " + line)
        return 1
    print("\nall optimizer, schedule, clipping and GradScaler results match torch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
