#!/usr/bin/env python3
"""PyTorch gradient parity, step 2 of 2: reruns the cases written by grad_parity_dump in PyTorch.

For each case it loads Keel's inputs in the same memory layout, marks the ones Keel
differentiated with requires_grad, runs the same op (or, where PyTorch 1.13 has none, its
definition written with torch ops: rms_norm, scaled_dot_product_attention), back-propagates
sum_k sum(output_k * weight_k) with Keel's weights, and compares the outputs and every input's
gradient: dtype, shape, values (|keel - torch| <= atol + rtol * |torch| per dtype, with atol
raised to rtol * max|torch| of the tensor, since both sides sum in different orders), and that
the same outputs require grad. A case where Keel raised keel::Error fails.

Prints one line per op: cases, and per dtype the max relative error of the forward outputs and
of the gradients (over elements at least 1e-3 of their tensor's largest; smaller ones are
cancellation noise, covered by the tolerance's atol), then a line per failing case; exits 1 on
any mismatch.

Usage: compare_torch_grad.py <folder written by grad_parity_dump>
"""
import json
import math
import os
import sys
import warnings
from collections import defaultdict

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_torch as base  # noqa: E402  (the tensor format and the elementwise ops are shared)

TOLERANCE = {"float64": (1e-12, 1e-10), "float32": (1e-6, 2e-5)}
RELEVANT = 1e-3  # relative errors are reported over elements >= RELEVANT * max|torch|


def load(meta, blob):
    """A tensor in the layout Keel's input had (as_strided reads the storage)."""
    tensor = base.load(meta, blob)  # "transposed" is base's "strided"
    if meta.get("layout") == "every_other":
        wide = torch.zeros(2 * tensor.numel(), dtype=tensor.dtype)[::2]  # the gaps: zeros, as Keel's
        wide.copy_(tensor.reshape(-1))
        tensor = wide
    if meta.get("requires_grad"):
        tensor.requires_grad_()
    return tensor


def dims_of(x, a):
    return base.all_dims(x, a["dims"])


def python_slice(x, a):
    index = [slice(None)] * x.dim()
    index[a["dim"] % x.dim()] = slice(a["start"], a["end"], a["step"])
    return x[tuple(index)]


def rms_norm(ins, a):
    """PyTorch 1.13 has no rms_norm: x * rsqrt(mean(x^2) + eps) * w over the normalized dims."""
    x = ins[0]
    dims = tuple(range(-len(a["normalized_shape"]), 0))
    eps = a["eps"] if "eps" in a else torch.finfo(x.dtype).eps
    y = x * torch.rsqrt(x.pow(2).mean(dims, keepdim=True) + eps)
    return [y * ins[1] if len(ins) > 1 else y]


def sdpa(ins, a):
    """PyTorch 1.13 has no scaled_dot_product_attention: softmax(q k^T * scale + mask) v."""
    q, k, v = ins[:3]
    heads, kv_heads = q.shape[-3] if q.dim() >= 3 else 1, k.shape[-3] if k.dim() >= 3 else 1
    if heads != kv_heads:  # grouped-query attention: each k/v head serves heads / kv_heads queries
        k = k.repeat_interleave(heads // kv_heads, -3)
        v = v.repeat_interleave(heads // kv_heads, -3)
    scale = a["scale"] if "scale" in a else 1 / math.sqrt(q.shape[-1])
    scores = q @ k.transpose(-2, -1) * scale
    length, source = scores.shape[-2], scores.shape[-1]
    if a.get("is_causal"):
        keep = torch.ones(length, source, dtype=torch.bool).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    if a.get("mask") == "bool":
        scores = scores.masked_fill(~ins[3], float("-inf"))
    elif a.get("mask") == "float":
        scores = scores + ins[3]
    return [torch.softmax(scores, -1) @ v]


def cross_entropy(ins, a):
    weight = ins[2] if a["weighted"] else None
    return [F.cross_entropy(ins[0], ins[1], weight=weight, ignore_index=a["ignore_index"], reduction=a["reduction"],
                            label_smoothing=a["label_smoothing"])]


def nll_loss(ins, a):
    weight = ins[2] if a["weighted"] else None
    return [F.nll_loss(ins[0], ins[1], weight=weight, ignore_index=a["ignore_index"], reduction=a["reduction"])]


def bce_with_logits(ins, a):
    weight = ins[2] if a["weighted"] else None
    pos_weight = ins[3 if a["weighted"] else 2] if a["pos_weight"] else None
    return [F.binary_cross_entropy_with_logits(ins[0], ins[1], weight=weight, reduction=a["reduction"],
                                               pos_weight=pos_weight)]


def split(ins, a):
    return list(torch.split(ins[0], a["sizes"] if "sizes" in a else a["split_size"], a["dim"]))


def scatter(ins, a):
    if "value" in a:
        return [torch.scatter(ins[0], a["dim"], ins[1], base.scalar(a["value"]))]
    return [torch.scatter(ins[0], a["dim"], ins[1], ins[2])]


def one(fn):
    return lambda ins, a: [fn(ins, a)]


UNARY = {
    "neg": torch.neg, "abs": torch.abs, "exp": torch.exp, "log": torch.log, "log1p": torch.log1p,
    "expm1": torch.expm1, "sqrt": torch.sqrt, "rsqrt": torch.rsqrt, "sin": torch.sin, "cos": torch.cos,
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "silu": F.silu, "erf": torch.erf,
}

OPS = {
    **{name: base.unary(fn) for name, fn in UNARY.items()},
    **{name: base.binary(name) for name in ("add", "sub", "mul", "div", "pow", "maximum", "minimum")},
    "where": base.where,
    "clamp": base.clamp,
    "clamp_tensor": one(lambda ins, a: torch.clamp(ins[0], ins[1], ins[2])),
    # reductions
    "sum": one(lambda ins, a: torch.sum(ins[0], dims_of(ins[0], a), keepdim=a["keepdim"])),
    "mean": one(lambda ins, a: torch.mean(ins[0], dims_of(ins[0], a), keepdim=a["keepdim"])),
    "prod": one(lambda ins, a: base.reduce_one_dim_at_a_time(torch.prod, ins[0], a["dims"], a["keepdim"])),
    "amax": one(lambda ins, a: torch.amax(ins[0], dims_of(ins[0], a), keepdim=a["keepdim"])),
    "amin": one(lambda ins, a: torch.amin(ins[0], dims_of(ins[0], a), keepdim=a["keepdim"])),
    "logsumexp": one(lambda ins, a: torch.logsumexp(ins[0], a["dims"], keepdim=a["keepdim"])),
    "var": one(lambda ins, a: torch.var(ins[0], dims_of(ins[0], a), correction=int(a["correction"]), keepdim=a["keepdim"])),
    "std": one(lambda ins, a: torch.std(ins[0], dims_of(ins[0], a), correction=int(a["correction"]), keepdim=a["keepdim"])),
    "norm": one(lambda ins, a: torch.linalg.vector_norm(ins[0], ord=a["p"], dim=dims_of(ins[0], a), keepdim=a["keepdim"])),
    "max_dim": lambda ins, a: list(torch.max(ins[0], a["dim"], keepdim=a["keepdim"])),
    "min_dim": lambda ins, a: list(torch.min(ins[0], a["dim"], keepdim=a["keepdim"])),
    "max_all": one(lambda ins, a: torch.max(ins[0])),
    "min_all": one(lambda ins, a: torch.min(ins[0])),
    # views
    "view": one(lambda ins, a: ins[0].view(a["shape"])),
    "reshape": one(lambda ins, a: ins[0].reshape(a["shape"])),
    "permute": one(lambda ins, a: ins[0].permute(a["dims"])),
    "transpose": one(lambda ins, a: ins[0].transpose(a["dim0"], a["dim1"])),
    "slice": one(lambda ins, a: python_slice(ins[0], a)),
    "select": one(lambda ins, a: ins[0].select(a["dim"], a["index"])),
    "expand": one(lambda ins, a: ins[0].expand(a["shape"])),
    "squeeze": one(lambda ins, a: ins[0].squeeze(a["dim"]) if "dim" in a else ins[0].squeeze()),
    "unsqueeze": one(lambda ins, a: ins[0].unsqueeze(a["dim"])),
    "flatten": one(lambda ins, a: ins[0].flatten(a["start"], a["end"])),
    "as_strided": one(lambda ins, a: ins[0].as_strided(a["size"], a["stride"], a["offset"])),
    # shape and indexing
    "cat": one(lambda ins, a: torch.cat(ins, a["dim"])),
    "stack": one(lambda ins, a: torch.stack(ins, a["dim"])),
    "split": split,
    "chunk": lambda ins, a: list(torch.chunk(ins[0], a["chunks"], a["dim"])),
    "gather": one(lambda ins, a: torch.gather(ins[0], a["dim"], ins[1])),
    "scatter": scatter,
    "scatter_add": one(lambda ins, a: torch.scatter_add(ins[0], a["dim"], ins[1], ins[2])),
    "index_select": one(lambda ins, a: torch.index_select(ins[0], a["dim"], ins[1])),
    "masked_fill": one(lambda ins, a: ins[0].masked_fill(ins[1], base.scalar(a["value"]))),
    "tril": one(lambda ins, a: torch.tril(ins[0], a["diagonal"])),
    "triu": one(lambda ins, a: torch.triu(ins[0], a["diagonal"])),
    # nn functions
    "softmax": one(lambda ins, a: torch.softmax(ins[0], a["dim"])),
    "log_softmax": one(lambda ins, a: torch.log_softmax(ins[0], a["dim"])),
    "layer_norm": one(lambda ins, a: F.layer_norm(ins[0], a["normalized_shape"], ins[1] if len(ins) > 1 else None,
                                                  ins[2] if len(ins) > 2 else None, a["eps"])),
    "rms_norm": rms_norm,
    "dropout": one(lambda ins, a: F.dropout(ins[0], a["p"], a["training"])),
    "embedding": one(lambda ins, a: F.embedding(ins[0], ins[1], padding_idx=a.get("padding_idx"))),
    # matrix products
    "matmul": one(lambda ins, a: torch.matmul(ins[0], ins[1])),
    "linear": one(lambda ins, a: F.linear(ins[0], ins[1], ins[2] if len(ins) > 2 else None)),
    "sdpa": sdpa,
    # losses
    "cross_entropy": cross_entropy,
    "nll_loss": nll_loss,
    "mse_loss": one(lambda ins, a: F.mse_loss(ins[0], ins[1], reduction=a["reduction"])),
    "l1_loss": one(lambda ins, a: F.l1_loss(ins[0], ins[1], reduction=a["reduction"])),
    "smooth_l1_loss": one(lambda ins, a: F.smooth_l1_loss(ins[0], ins[1], reduction=a["reduction"], beta=a["beta"])),
    "huber_loss": one(lambda ins, a: F.huber_loss(ins[0], ins[1], reduction=a["reduction"], delta=a["delta"])),
    "bce_with_logits": bce_with_logits,
    "kl_div": one(lambda ins, a: F.kl_div(ins[0], ins[1], reduction=a["reduction"], log_target=a["log_target"])),
}


def compare(got, expected):
    """Returns (max relative error, problem or None) for one tensor; None stands for zeros."""
    if got is None and expected is None:
        return 0.0, None
    if got is None:
        got = torch.zeros_like(expected)
    if expected is None:
        expected = torch.zeros_like(got)
    got_dtype, want_dtype = base.TORCH_NAMES[got.dtype], base.TORCH_NAMES[expected.dtype]
    if got_dtype != want_dtype:
        return 0.0, f"dtype {got_dtype}, torch gives {want_dtype}"
    if list(got.shape) != list(expected.shape):
        return 0.0, f"shape {list(got.shape)}, torch gives {list(expected.shape)}"
    if got.numel() == 0:
        return 0.0, None
    g, e = got.detach().to(torch.float64), expected.detach().to(torch.float64)
    if got_dtype not in TOLERANCE:  # integer outputs (indices): exact
        differ = int((g != e).sum())
        return (1.0, f"{differ} of {g.numel()} values differ") if differ else (0.0, None)
    atol, rtol = TOLERANCE[got_dtype]
    finite = e[torch.isfinite(e)]
    scale = float(finite.abs().max()) if finite.numel() else 0.0
    atol = max(atol, rtol * scale)
    diff = (g - e).abs()
    ok = (torch.isnan(g) & torch.isnan(e)) | (torch.isinf(e) & (g == e)) | (diff <= atol + rtol * e.abs())
    relevant = torch.isfinite(e) & torch.isfinite(g) & (e.abs() >= max(RELEVANT * scale, 1e-300))
    relative = (diff / e.abs())[relevant]
    max_relative = float(relative.max()) if relative.numel() else 0.0
    if not bool(ok.all()):
        index = tuple((~ok).nonzero()[0].tolist())
        return max(max_relative, 1.0), (f"at {list(index)}: {g[index].item()!r} vs torch {e[index].item()!r} "
                                        f"(atol {atol:.3g}, rtol {rtol:g}; {int((~ok).sum())} of {g.numel()} differ)")
    return max_relative, None


def describe(metas):
    def one_input(m):
        layout = "" if m.get("layout", "contiguous") == "contiguous" else f"({m['layout']})"
        return f"{m['dtype']}{m['shape']}{layout}{'*' if m.get('requires_grad') else ''}"
    return ", ".join(one_input(m) for m in metas)


def run_case(case, blob):
    """Returns (dtype, forward max rel, gradient max rel, problem or None)."""
    op, args = case["op"], case["args"]
    floating = [m["dtype"] for m in case["inputs"] if m["dtype"] in TOLERANCE]
    dtype = floating[0] if floating else "?"
    if "error" in case:
        return dtype, 0.0, 0.0, f"Keel raised: {case['error']}"
    inputs = [load(m, blob) for m in case["inputs"]]
    try:
        expected = OPS[op](inputs, args)
    except Exception as error:  # noqa: BLE001 - report, do not stop the other cases
        return dtype, 0.0, 0.0, f"torch raised {type(error).__name__}: {str(error).splitlines()[0]}"
    outputs = [load(m, blob) for m in case["outputs"]]
    if len(outputs) != len(expected):
        return dtype, 0.0, 0.0, f"{len(outputs)} outputs, torch gives {len(expected)}"
    forward, backward = 0.0, 0.0
    roots, weights = [], []
    for k, (got, want) in enumerate(zip(outputs, expected)):
        relative, issue = compare(got, want)
        forward = max(forward, relative)
        if issue:
            return dtype, forward, backward, f"output {k}: {issue}"
        keel_grad = case["outputs"][k]["requires_grad"]
        if keel_grad != want.requires_grad:
            return dtype, forward, backward, f"output {k} requires_grad is {keel_grad} in Keel, {want.requires_grad} in torch"
        if case["weights"][k] is not None:
            roots.append(want)
            weights.append(load(case["weights"][k], blob))
    if not roots:
        return dtype, forward, backward, "no output requires grad"
    torch.autograd.backward(roots, weights)
    for i, (tensor, meta) in enumerate(zip(inputs, case["inputs"])):
        if not meta.get("requires_grad"):
            continue
        got = load(case["grads"][i], blob) if case["grads"][i] is not None else None
        relative, issue = compare(got, tensor.grad)
        backward = max(backward, relative)
        if issue:
            return dtype, forward, backward, f"gradient of input {i}: {issue}"
    return dtype, forward, backward, None


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    cases, blob = base.read_dump(sys.argv[1])
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # kl_div's "mean" warning and the like

    summary = defaultdict(lambda: {"cases": 0, "failed": 0, "fwd": defaultdict(float), "grad": defaultdict(float)})
    failures = []
    for case in cases:
        row = summary[case["op"]]
        row["cases"] += 1
        dtype, forward, backward, problem = run_case(case, blob)
        row["fwd"][dtype] = max(row["fwd"][dtype], forward)
        row["grad"][dtype] = max(row["grad"][dtype], backward)
        if problem:
            row["failed"] += 1
            failures.append(f"  FAIL case {case['id']} {case['op']} {json.dumps(case['args'])} "
                            f"inputs [{describe(case['inputs'])}]: {problem}")

    print(f"{'op':<16}{'cases':>5}   max rel err: {'fwd f64':>9} {'grad f64':>9} {'fwd f32':>9} {'grad f32':>9}")
    for op, row in summary.items():
        status = "ok" if row["failed"] == 0 else f"FAIL ({row['failed']} of {row['cases']})"
        errors = " ".join(f"{row[kind][dtype]:9.2e}" for dtype in ("float64", "float32") for kind in ("fwd", "grad"))
        print(f"{op:<16}{row['cases']:5d}                {errors}  {status}")
    for line in failures[:200]:
        print(line)
    if len(failures) > 200:
        print(f"  ... and {len(failures) - 200} more failing cases")
    total_failed = sum(row["failed"] for row in summary.values())
    print(f"grad parity: {len(cases)} cases, {len(summary)} ops, {total_failed} mismatches (torch {torch.__version__})")
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
