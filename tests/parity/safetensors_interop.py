"""Python's side of the safetensors round trip (see safetensors_interop.cpp for the whole flow).

Checks the files Keel wrote with safetensors.torch and safetensors.numpy (names, dtypes, shapes,
values from the shared formula, metadata), loads Keel's SmallCNN and MLP weights into the
equivalent torch modules with load_state_dict(strict=True) and compares their outputs with
Keel's; then writes torch_all / numpy_all files and torch models for Keel to read.
Usage: safetensors_interop.py DIR. Exits 1 on any difference."""
import sys

import numpy as np
import torch
import torch.nn as tnn
from safetensors import safe_open
from safetensors.numpy import load_file as np_load_file, save_file as np_save_file
from safetensors.torch import load_file, save_file

DIR = sys.argv[1]
failures = []


def expect(ok, what):
    if not ok:
        failures.append(what)
        print("[safetensors_interop.py] FAIL:", what)


CASES = [("F64", torch.float64), ("F32", torch.float32), ("F16", torch.float16), ("BF16", torch.bfloat16),
         ("I64", torch.int64), ("I32", torch.int32), ("I8", torch.int8), ("U8", torch.uint8), ("BOOL", torch.bool)]
SHAPES = [("odd", (3, 5, 7)), ("scalar", ()), ("empty", (0, 3)), ("one", (1,)), ("wide", (2, 1, 33))]


def values(code, n, k):
    """Element i of tensor k, as in value_of in safetensors_interop.cpp (int64 arithmetic)."""
    i = np.arange(n, dtype=np.int64)
    m = (i * 37 + k) % 101 - 50
    if code == "I64":
        return m * 1000000007
    if code == "I32":
        return m * 1000003
    if code == "I8":
        return (i * 37 + k) % 256 - 128
    if code == "U8":
        return (i * 37 + k) % 256
    if code == "BOOL":
        return ((i * 37 + k) % 3 == 0)
    return m.astype(np.float64) / 8.0


def formula_tensors(with_bf16):
    out, k = {}, 0
    for code, dtype in CASES:
        for suffix, shape in SHAPES:
            seed, k = k, k + 1
            if code == "BF16" and not with_bf16:
                continue
            n = int(np.prod(shape, dtype=np.int64))
            out[f"{code}_{suffix}"] = torch.from_numpy(values(code, n, seed)).reshape(shape).to(dtype)
    return out


def check_tensors(label, got, expected):
    expect(sorted(got) == sorted(expected), f"{label}: names {sorted(set(got) ^ set(expected))} differ")
    for name, want in expected.items():
        if name not in got:
            continue
        t = got[name]
        if isinstance(t, np.ndarray):
            t = torch.from_numpy(t)
        expect(t.dtype == want.dtype and tuple(t.shape) == tuple(want.shape) and torch.equal(t, want),
               f"{label}: {name} differs ({t.dtype} {tuple(t.shape)} vs {want.dtype} {tuple(want.shape)})")


def small_cnn():
    # SmallCNN(in_channels 2, channels {4, 6}, two convs per stage, no dropout, 5 classes, 8 x 8),
    # the same torch.nn.Sequential pair as Keel's ("features.0.weight", "classifier.2.bias").
    layers, c = [], 2
    for width in (4, 6):
        for _ in range(2):
            layers += [tnn.Conv2d(c, width, 3, padding=1, bias=False), tnn.BatchNorm2d(width), tnn.ReLU()]
            c = width
        layers.append(tnn.MaxPool2d(2))

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(*layers)
            self.classifier = tnn.Sequential(tnn.Flatten(), tnn.Dropout(0.0), tnn.Linear(c * 2 * 2, 5))

        def forward(self, x):
            return self.classifier(self.features(x))

    return Net()


def mlp():
    return tnn.Sequential(tnn.Linear(6, 16), tnn.ReLU(), tnn.Linear(16, 12), tnn.ReLU(), tnn.Linear(12, 4))


# Keel -> Python: every dtype through safetensors.torch, all but bf16 through safetensors.numpy.
check_tensors("keel_all (torch)", load_file(f"{DIR}/keel_all.safetensors"), formula_tensors(True))
with safe_open(f"{DIR}/keel_all.safetensors", framework="pt") as f:
    meta = f.metadata()
expect(meta == {"source": "keel", "note": "quote \" backslash \\ unicode \u00e9"}, f"keel_all metadata {meta}")
check_tensors("keel_numpy (numpy)", np_load_file(f"{DIR}/keel_numpy.safetensors"), formula_tensors(False))

# Keel's model weights in torch: strict load, same outputs.
torch.manual_seed(0)
for name, make in (("cnn", small_cnn), ("mlp", mlp)):
    model = make().eval()
    model.load_state_dict(load_file(f"{DIR}/keel_{name}.safetensors"), strict=True)
    io = load_file(f"{DIR}/keel_{name}_io.safetensors")
    with torch.no_grad():
        diff = (model(io["x"]) - io["y"]).abs().max().item()
    print(f"[safetensors_interop.py] Keel {name} weights in torch: max |torch - keel| = {diff:.3g}")
    expect(diff <= 1e-5, f"Keel {name} weights give different outputs in torch ({diff})")

# Python -> Keel.
save_file({k: v.contiguous() for k, v in formula_tensors(True).items()}, f"{DIR}/torch_all.safetensors",
          metadata={"source": "torch"})
np_save_file({k: v.numpy() for k, v in formula_tensors(False).items()}, f"{DIR}/numpy_all.safetensors",
             metadata={"source": "numpy"})
torch.manual_seed(7)
for name, make, shape in (("cnn", small_cnn, (3, 2, 8, 8)), ("mlp", mlp, (5, 6))):
    model = make()
    with torch.no_grad():
        model.train()
        model(torch.randn(4, *shape[1:]) * 2 + 0.5)  # running statistics away from (0, 1)
        model.eval()
        x = torch.randn(*shape)
        y = model(x)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{DIR}/torch_{name}.safetensors")
    save_file({"x": x, "y": y}, f"{DIR}/torch_{name}_io.safetensors")

print(f"[safetensors_interop.py] {'all checks passed' if not failures else f'{len(failures)} failures'}")
sys.exit(1 if failures else 0)
