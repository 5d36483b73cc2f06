#!/usr/bin/env python3
"""PyTorch parity, step 2 of 2: reruns the cases written by parity_dump in PyTorch.

For each case it loads Keel's inputs, runs the same op in PyTorch, and compares the outputs'
count, dtypes, shapes and values (tolerance per dtype: |keel - torch| <= atol + rtol * |torch|,
NaN where NaN, the same infinities). A case where Keel raised keel::Error passes only if
PyTorch refuses it too. Prints one line per op (cases, dtypes, max relative error) and a line
per failing case; exits 1 on any mismatch.

PyTorch 1.13 lacks some CPU kernels ("... not implemented for 'Half'"); a case Keel computes
is then rerun with those inputs widened (see WIDER), and counted as "widened" in the summary.

Usage: compare_torch.py <folder written by parity_dump>
"""
import json
import math
import operator
import os
import sys
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

# dtype name (as both libraries print it) -> (torch dtype, numpy dtype of the stored bytes)
DTYPES = {
    "float32": (torch.float32, np.float32),
    "float64": (torch.float64, np.float64),
    "float16": (torch.float16, np.float16),
    "bfloat16": (torch.bfloat16, np.int16),  # numpy has no bfloat16: read the bits, then view
    "int8": (torch.int8, np.int8),
    "uint8": (torch.uint8, np.uint8),
    "int32": (torch.int32, np.int32),
    "int64": (torch.int64, np.int64),
    "bool": (torch.bool, np.bool_),
}
TORCH_NAMES = {torch_dtype: name for name, (torch_dtype, _) in DTYPES.items()}

# (atol, rtol) per output dtype; reductions add an atol relative to the output's scale
# because summation order differs (see tolerance()).
TOLERANCE = {
    "float64": (1e-12, 1e-10),
    "float32": (1e-6, 2e-5),
    "float16": (1e-3, 2e-3),
    "bfloat16": (1e-2, 1.6e-2),
}
REDUCTIONS = {"sum", "mean", "prod", "var", "std", "logsumexp", "norm"}


def load(meta, blob):
    torch_dtype, numpy_dtype = DTYPES[meta["dtype"]]
    shape = meta["shape"]
    count = math.prod(shape)
    if count == 0:
        array = np.empty(0, dtype=numpy_dtype)
    else:
        array = np.frombuffer(blob, dtype=numpy_dtype, count=count, offset=meta["offset"]).copy()
    tensor = torch.from_numpy(array)
    if torch_dtype == torch.bfloat16:
        tensor = tensor.view(torch.bfloat16)
    tensor = tensor.reshape(shape)
    if meta["strided"] and tensor.dim() >= 2:  # the same non-contiguous layout Keel had
        tensor = tensor.transpose(-1, -2).contiguous().transpose(-1, -2)
    return tensor


def scalar(value):
    kind = value["kind"]
    return bool(value["value"]) if kind == "bool" else int(value["value"]) if kind == "int" else float(value["value"])


def all_dims(x, dims):
    return tuple(dims) if dims else tuple(range(x.dim()))


def reduce_one_dim_at_a_time(fn, x, dims, keepdim, **kwargs):
    """torch.prod/all/any take one dim at a time: reduce them in turn (keepdim), then squeeze."""
    dims = sorted({d % x.dim() for d in all_dims(x, dims)}, reverse=True)
    result = x
    for i, d in enumerate(dims):
        result = fn(result, d, keepdim=True, **(kwargs if i == 0 else {}))
    if not keepdim:
        for d in dims:
            result = result.squeeze(d)
    return result


def torch_dtype_arg(args):
    return DTYPES[args["dtype"]][0] if "dtype" in args else None


def unary(fn):
    return lambda ins, args: [fn(ins[0])]


BINARY = {
    "add": (torch.add, operator.add), "sub": (torch.sub, operator.sub), "mul": (torch.mul, operator.mul),
    "div": (torch.div, operator.truediv), "pow": (torch.pow, operator.pow),
    "maximum": (torch.maximum, None), "minimum": (torch.minimum, None),
    "eq": (torch.eq, operator.eq), "ne": (torch.ne, operator.ne), "lt": (torch.lt, operator.lt),
    "le": (torch.le, operator.le), "gt": (torch.gt, operator.gt), "ge": (torch.ge, operator.ge),
    "logical_and": (torch.logical_and, None), "logical_or": (torch.logical_or, None),
    "logical_xor": (torch.logical_xor, None),
}


def binary(name):
    tensor_fn, python_op = BINARY[name]

    def run(ins, args):
        if "scalar" in args:  # a Python number, so PyTorch applies its scalar promotion
            s = scalar(args["scalar"])
            return [python_op(ins[0], s) if args["side"] == "right" else python_op(s, ins[0])]
        return [tensor_fn(ins[0], ins[1])]

    return run


def where(ins, args):
    if "a_scalar" in args:
        return [torch.where(ins[0], scalar(args["a_scalar"]), ins[1])]
    if "b_scalar" in args:
        return [torch.where(ins[0], ins[1], scalar(args["b_scalar"]))]
    return [torch.where(ins[0], ins[1], ins[2])]


def clamp(ins, args):
    low = scalar(args["min"]) if "min" in args else None
    high = scalar(args["max"]) if "max" in args else None
    return [torch.clamp(ins[0], min=low, max=high)]


QUANTIZED = {"uint8": torch.quint8, "int8": torch.qint8}


def as_quantized(q, scale, zero_point):
    return torch._make_per_tensor_quantized_tensor(q, scale, zero_point)


def as_channel_quantized(q, scales, zero_points, axis):
    return torch._make_per_channel_quantized_tensor(q, scales.double(), zero_points, axis)


OPS = {
    "neg": unary(torch.neg), "abs": unary(torch.abs), "exp": unary(torch.exp), "log": unary(torch.log),
    "log1p": unary(torch.log1p), "expm1": unary(torch.expm1), "sqrt": unary(torch.sqrt),
    "rsqrt": unary(torch.rsqrt), "sin": unary(torch.sin), "cos": unary(torch.cos), "tanh": unary(torch.tanh),
    "sigmoid": unary(torch.sigmoid), "relu": unary(torch.relu), "gelu": unary(F.gelu),
    "gelu_tanh": unary(lambda x: F.gelu(x, approximate="tanh")), "silu": unary(F.silu), "erf": unary(torch.erf),
    "logical_not": unary(torch.logical_not), "isnan": unary(torch.isnan), "isinf": unary(torch.isinf),
    **{name: binary(name) for name in BINARY},
    "where": where,
    "clamp": clamp, "clamp_min": clamp, "clamp_max": clamp,
    "clamp_tensor": lambda ins, args: [torch.clamp(ins[0], ins[1], ins[2])],
    # reductions
    "sum": lambda ins, a: [torch.sum(ins[0], all_dims(ins[0], a["dims"]), keepdim=a["keepdim"], dtype=torch_dtype_arg(a))],
    "mean": lambda ins, a: [torch.mean(ins[0], all_dims(ins[0], a["dims"]), keepdim=a["keepdim"])],
    "prod": lambda ins, a: [reduce_one_dim_at_a_time(torch.prod, ins[0], a["dims"], a["keepdim"], dtype=torch_dtype_arg(a))],
    "amax": lambda ins, a: [torch.amax(ins[0], all_dims(ins[0], a["dims"]), keepdim=a["keepdim"])],
    "amin": lambda ins, a: [torch.amin(ins[0], all_dims(ins[0], a["dims"]), keepdim=a["keepdim"])],
    "all": lambda ins, a: [reduce_one_dim_at_a_time(torch.all, ins[0], a["dims"], a["keepdim"])],
    "any": lambda ins, a: [reduce_one_dim_at_a_time(torch.any, ins[0], a["dims"], a["keepdim"])],
    "logsumexp": lambda ins, a: [torch.logsumexp(ins[0], a["dims"], keepdim=a["keepdim"])],
    "var": lambda ins, a: [torch.var(ins[0], all_dims(ins[0], a["dims"]), correction=int(a["correction"]), keepdim=a["keepdim"])],
    "std": lambda ins, a: [torch.std(ins[0], all_dims(ins[0], a["dims"]), correction=int(a["correction"]), keepdim=a["keepdim"])],
    "norm": lambda ins, a: [torch.linalg.vector_norm(ins[0], ord=a["p"], dim=all_dims(ins[0], a["dims"]), keepdim=a["keepdim"])],
    "max_dim": lambda ins, a: list(torch.max(ins[0], a["dim"], keepdim=a["keepdim"])),
    "min_dim": lambda ins, a: list(torch.min(ins[0], a["dim"], keepdim=a["keepdim"])),
    "max_all": lambda ins, a: [torch.max(ins[0])],
    "min_all": lambda ins, a: [torch.min(ins[0])],
    "argmax": lambda ins, a: [torch.argmax(ins[0], a.get("dim"), keepdim=a.get("keepdim", False))],
    "argmin": lambda ins, a: [torch.argmin(ins[0], a.get("dim"), keepdim=a.get("keepdim", False))],
    # shape and indexing
    "cat": lambda ins, a: [torch.cat(ins, a["dim"])],
    "stack": lambda ins, a: [torch.stack(ins, a["dim"])],
    "split": lambda ins, a: list(torch.split(ins[0], a["split_size"], a["dim"])),
    "split_sizes": lambda ins, a: list(torch.split(ins[0], a["sizes"], a["dim"])),
    "chunk": lambda ins, a: list(torch.chunk(ins[0], a["chunks"], a["dim"])),
    "gather": lambda ins, a: [torch.gather(ins[0], a["dim"], ins[1])],
    "scatter": lambda ins, a: [torch.scatter(ins[0], a["dim"], ins[1], ins[2])],
    "scatter_value": lambda ins, a: [torch.scatter(ins[0], a["dim"], ins[1], scalar(a["value"]))],
    "scatter_add": lambda ins, a: [torch.scatter_add(ins[0], a["dim"], ins[1], ins[2])],
    "index_select": lambda ins, a: [torch.index_select(ins[0], a["dim"], ins[1])],
    "masked_fill": lambda ins, a: [ins[0].masked_fill(ins[1], scalar(a["value"]))],
    "one_hot": lambda ins, a: [F.one_hot(ins[0], a["num_classes"])],
    "tril": lambda ins, a: [torch.tril(ins[0], a["diagonal"])],
    "triu": lambda ins, a: [torch.triu(ins[0], a["diagonal"])],
    # factories
    "arange": lambda ins, a: [torch.arange(scalar(a["end"]), dtype=torch_dtype_arg(a)) if "start" not in a else
                              torch.arange(scalar(a["start"]), scalar(a["end"]), scalar(a["step"]), dtype=torch_dtype_arg(a))],
    "linspace": lambda ins, a: [torch.linspace(a["start"], a["end"], a["steps"], dtype=torch_dtype_arg(a))],
    "eye": lambda ins, a: [torch.eye(a["n"], a["m"] if a["m"] >= 0 else a["n"], dtype=torch_dtype_arg(a))],
    "tensor": lambda ins, a: [torch.tensor(a["data"], dtype=torch_dtype_arg(a))],
    # quantization: Keel returns the integer values (torch's int_repr())
    "quantize_per_tensor": lambda ins, a: [torch.quantize_per_tensor(ins[0], a["scale"], a["zero_point"],
                                                                      QUANTIZED[a["dtype"]]).int_repr()],
    "quantize_per_channel": lambda ins, a: [torch.quantize_per_channel(ins[0], ins[1].double(), ins[2], a["axis"],
                                                                       QUANTIZED[a["dtype"]]).int_repr()],
    "dequantize_per_tensor": lambda ins, a: [as_quantized(ins[0], a["scale"], a["zero_point"]).dequantize()],
    "dequantize_per_channel": lambda ins, a: [as_channel_quantized(ins[0], ins[1], ins[2], a["axis"]).dequantize()],
}

# Kernels PyTorch 1.13 lacks on the CPU ("... not implemented for 'Half'"). When Keel computes
# such a case, PyTorch reruns it with those inputs widened: 16-bit floats to float32 with the
# outputs rounded back (Keel's definition: f16/bf16 math is done in f32), bool to uint8 with the
# outputs cast back, and integers to float32 for the floating functions PyTorch has no integer
# kernel for (gelu, silu: Keel promotes integer inputs of floating functions to f32, as
# torch.exp does). A case that both refuse natively counts as refused by both.
WIDER = {
    "'Half'": ([torch.float16], torch.float32, True),
    "'BFloat16'": ([torch.bfloat16], torch.float32, True),
    "'Bool'": ([torch.bool], torch.uint8, True),
    "'Byte'": ([torch.bool, torch.uint8], torch.float32, False),
    "'Int'": ([torch.int32], torch.float32, False),
    "'Long'": ([torch.int64], torch.float32, False),
}
# torch.linalg.vector_norm of float16/bfloat16 on the CPU accumulates in the 16-bit type in 1.13
# (the L1 norm of 660 bfloat16 ones is 256); Keel accumulates in f32, so the comparison runs
# PyTorch on float32 copies and rounds the result back.
UPCAST_16BIT = {"norm"}


def call(op, ins, args):
    if op in UPCAST_16BIT and ins and ins[0].dtype in (torch.float16, torch.bfloat16):
        narrow = ins[0].dtype
        return [t.to(narrow) if t.dtype == torch.float32 else t for t in OPS[op]([t.float() for t in ins], args)]
    return OPS[op](ins, args)


def run_torch(op, ins, args, keel_refused):
    """Returns (outputs or None, error message or None, widened?)."""
    current, round_back = ins, []  # round_back: (narrow, wide) casts to undo on the outputs
    for attempt in range(3):  # bool may need two steps: uint8, then float32
        try:
            outputs = call(op, current, args)
        except RuntimeError as error:
            message = str(error)
            missing = next((key for key in WIDER if "not implemented for " + key in message), None)
            if missing is None or keel_refused:
                return None, message, attempt > 0
            narrow_types, wide, undo = WIDER[missing]
            narrow = next((t.dtype for t in current if t.dtype in narrow_types), None)
            current = [t.to(wide) if t.dtype in narrow_types else t for t in current]
            round_back = round_back + [(narrow, wide)] if undo and narrow is not None else []
            continue
        except Exception as error:  # noqa: BLE001 - ValueError, TypeError, IndexError also refuse
            return None, f"{type(error).__name__}: {error}", attempt > 0
        for narrow, wide in reversed(round_back):
            outputs = [t.to(narrow) if t.dtype == wide else t for t in outputs]
        return outputs, None, attempt > 0
    return None, message, True


def tolerance(op, dtype, expected):
    atol, rtol = TOLERANCE[dtype]
    if op in REDUCTIONS and expected.numel() > 0:
        finite = expected[torch.isfinite(expected)]
        scale = float(finite.abs().max()) if finite.numel() else 0.0
        atol = max(atol, rtol * scale)
    return atol, rtol


def compare(op, got, expected):
    """Returns (max relative error, problem or None) for one output."""
    got_dtype, want_dtype = TORCH_NAMES[got.dtype], TORCH_NAMES[expected.dtype]
    if got_dtype != want_dtype:
        return 0.0, f"dtype {got_dtype}, torch gives {want_dtype}"
    if list(got.shape) != list(expected.shape):
        return 0.0, f"shape {list(got.shape)}, torch gives {list(expected.shape)}"
    if got.numel() == 0:
        return 0.0, None
    if got_dtype not in TOLERANCE:  # integers and bool: exact
        g, e = got.to(torch.int64), expected.to(torch.int64)
        bad = (g != e).nonzero()
        if bad.numel():
            index = tuple(bad[0].tolist())
            return 1.0, f"at {list(index)}: {g[index].item()} vs torch {e[index].item()} ({bad.shape[0]} differ)"
        return 0.0, None
    g, e = got.to(torch.float64), expected.to(torch.float64)
    atol, rtol = tolerance(op, got_dtype, expected.to(torch.float64))
    both_nan = torch.isnan(g) & torch.isnan(e)
    same_inf = torch.isinf(e) & (g == e)
    finite = torch.isfinite(e) & torch.isfinite(g)
    diff = (g - e).abs()
    ok = both_nan | same_inf | (finite & (diff <= atol + rtol * e.abs()))
    relative = torch.where(finite, diff / e.abs().clamp_min(1e-30), torch.zeros_like(diff))
    # relative error where |torch| is tiny says little; report it against atol-scale values only
    relative = torch.where(e.abs() > atol, relative, torch.zeros_like(relative))
    max_relative = float(relative.max()) if relative.numel() else 0.0
    if not bool(ok.all()):
        index = tuple((~ok).nonzero()[0].tolist())
        return max_relative, (f"at {list(index)}: {g[index].item()!r} vs torch {e[index].item()!r} "
                              f"(atol {atol:g}, rtol {rtol:g}; {int((~ok).sum())} differ)")
    return max_relative, None


def describe(metas):
    return ", ".join(f"{m['dtype']}{m['shape']}{'(strided)' if m['strided'] else ''}" for m in metas)


def read_dump(folder):
    """The cases of a dump folder (index.json) and the bytes of its tensors (data.bin)."""
    with open(os.path.join(folder, "index.json")) as f:
        cases = json.load(f)["cases"]
    with open(os.path.join(folder, "data.bin"), "rb") as f:
        blob = f.read()
    return cases, blob


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    cases, blob = read_dump(sys.argv[1])
    torch.set_num_threads(1)

    summary = defaultdict(lambda: {"cases": 0, "failed": 0, "max_rel": 0.0, "dtypes": set(), "refused": 0,
                                   "widened": 0})
    failures = []
    for case in cases:
        op, args = case["op"], case["args"]
        row = summary[op]
        row["cases"] += 1
        row["dtypes"].update(m["dtype"] for m in case["inputs"])
        inputs = [load(m, blob) for m in case["inputs"]]
        expected, torch_error, widened = run_torch(op, inputs, args, "error" in case)
        row["widened"] += widened
        problem = None
        if "error" in case:
            row["refused"] += 1
            if torch_error is None:
                problem = f"Keel refused ({case['error']}) but torch computes it"
        elif torch_error is not None:
            problem = f"torch refuses ({torch_error.splitlines()[0]}) but Keel computes it"
        else:
            outputs = [load(m, blob) for m in case["outputs"]]
            if len(outputs) != len(expected):
                problem = f"{len(outputs)} outputs, torch gives {len(expected)}"
            else:
                for k, (got, want) in enumerate(zip(outputs, expected)):
                    relative, issue = compare(op, got, want)
                    row["max_rel"] = max(row["max_rel"], relative)
                    if issue:
                        problem = f"output {k}: {issue}"
                        break
        if problem:
            row["failed"] += 1
            failures.append(f"  FAIL case {case['id']} {op} {json.dumps(args)} inputs [{describe(case['inputs'])}]: {problem}")

    for op, row in summary.items():
        status = "ok" if row["failed"] == 0 else f"FAIL ({row['failed']} of {row['cases']})"
        refused = f", {row['refused']} refused" if row["refused"] else ""
        refused += f", {row['widened']} widened" if row["widened"] else ""
        dtypes = ",".join(sorted(row["dtypes"])) or "-"
        print(f"{op:<14} {row['cases']:4d} cases{refused:<26} max rel err {row['max_rel']:.2e}  [{dtypes}]  {status}")
    total_failed = sum(row["failed"] for row in summary.values())
    for line in failures[:200]:
        print(line)
    if len(failures) > 200:
        print(f"  ... and {len(failures) - 200} more failing cases")
    print(f"parity: {len(cases)} cases, {len(summary)} ops, {total_failed} mismatches "
          f"(torch {torch.__version__})")
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
