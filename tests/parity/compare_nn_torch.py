#!/usr/bin/env python3
"""Compare nn_parity_dump's layers with torch 1.13: the same weights (loaded strictly into the
equivalent torch module), forward, backward of sum(out * w), and the buffers after the step.
Also compares whole models' state_dict keys and shapes with equivalent torch modules."""
import json
import math
import sys

import torch
import torch.nn as tnn

torch.set_num_threads(1)


def load(path):
    with open(f"{path}/index.json") as f:
        index = json.load(f)
    with open(f"{path}/data.bin", "rb") as f:
        data = torch.frombuffer(bytearray(f.read()), dtype=torch.float64)

    def get(entry):
        start = entry["offset"] // 8
        count = math.prod(entry["shape"])
        return data[start:start + count].clone().reshape(entry["shape"])

    return index, get


def small_cnn(channels, convs=2, in_ch=1, classes=10, size=28, dropout=0.0):
    layers, c = [], in_ch
    for width in channels:
        for _ in range(convs):
            layers += [tnn.Conv2d(c, width, 3, padding=1, bias=False), tnn.BatchNorm2d(width), tnn.ReLU()]
            c = width
        layers.append(tnn.MaxPool2d(2))
    side = size >> len(channels)

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(*layers)
            self.classifier = tnn.Sequential(tnn.Flatten(), tnn.Dropout(dropout), tnn.Linear(c * side * side, classes))

        def forward(self, x):
            return self.classifier(self.features(x))

    return Net()


class MLPBlock(tnn.Module):
    def __init__(self, e):
        super().__init__()
        self.c_fc = tnn.Linear(e, 4 * e)
        self.c_proj = tnn.Linear(4 * e, e)

    def forward(self, x):
        return self.c_proj(torch.nn.functional.gelu(self.c_fc(x)))


class Block(tnn.Module):
    """The pre-norm block written with torch's own modules."""

    def __init__(self, e, h, causal=True):
        super().__init__()
        self.ln_1 = tnn.LayerNorm(e)
        self.attn = tnn.MultiheadAttention(e, h, batch_first=True)
        self.ln_2 = tnn.LayerNorm(e)
        self.mlp = MLPBlock(e)
        self.causal = causal

    def forward(self, x):
        a = self.ln_1(x)
        h = x + attend(self.attn, a, self.causal)
        return h + self.mlp(self.ln_2(h))


def attend(mha, x, causal):
    t = x.shape[1]
    # torch's MultiheadAttention mask: True = NOT allowed (the opposite of Keel's / SDPA's bool mask).
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1) if causal else None
    return mha(x, x, x, attn_mask=mask, need_weights=False)[0]


class MHA(tnn.Module):
    def __init__(self, e, h, causal):
        super().__init__()
        self.inner = tnn.MultiheadAttention(e, h, batch_first=True)
        self.causal = causal

    def forward(self, x):
        return attend(self.inner, x, self.causal)


class GPT(tnn.Module):
    """nanoGPT's model with torch modules (MultiheadAttention in place of c_attn / c_proj)."""

    def __init__(self, vocab, block, layers, heads, embd):
        super().__init__()
        self.transformer = tnn.ModuleDict(dict(
            wte=tnn.Embedding(vocab, embd), wpe=tnn.Embedding(block, embd),
            h=tnn.ModuleList([Block(embd, heads) for _ in range(layers)]), ln_f=tnn.LayerNorm(embd)))
        self.lm_head = tnn.Linear(embd, vocab, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied, as nanoGPT

    def forward(self, idx):
        pos = torch.arange(idx.shape[1])
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


def build(case):
    a, layer = case["args"], case["layer"]
    if layer == "Linear":
        return tnn.Linear(a["in"], a["out"]), ""
    if layer == "Conv2d":
        return tnn.Conv2d(a["in"], a["out"], a["kernel"], stride=tuple(a["stride"]), padding=tuple(a["padding"]),
                          groups=a["groups"]), ""
    if layer == "BatchNorm2d":
        return tnn.BatchNorm2d(a["features"]), ""
    if layer == "BatchNorm1d":
        return tnn.BatchNorm1d(a["features"], momentum=None), ""
    if layer == "LayerNorm":
        return tnn.LayerNorm(a["shape"]), ""
    if layer == "GroupNorm":
        return tnn.GroupNorm(a["groups"], a["channels"]), ""
    if layer == "MultiheadAttention":
        return MHA(a["embed"], a["heads"], a["causal"]), "inner."
    if layer == "TransformerBlock":
        return Block(a["embed"], a["heads"]), ""
    if layer == "GPT":
        return GPT(a["vocab"], a["block"], a["layers"], a["heads"], a["embd"]), ""
    if layer == "SmallCNN":
        return small_cnn(a["channels"]), ""
    raise ValueError(layer)


def main():
    index, get = load(sys.argv[1])
    failures = 0
    for case in index["cases"]:
        dtype = torch.float64 if case["dtype"] == "float64" else torch.float32
        tol = 1e-9 if dtype == torch.float64 else 2e-4
        t = {name: get(entry) for name, entry in case["tensors"].items()}
        module, prefix = build(case)
        state = {prefix + name[len("state."):]: value for name, value in t.items() if name.startswith("state.")}
        state = {k: (v.long() if k.endswith("num_batches_tracked") else v) for k, v in state.items()}
        module.load_state_dict(state, strict=True)
        module = module.to(dtype)
        module.train(case["mode"] == "train")
        if case["layer"] == "GPT":
            x = t["x"].long()
            out = module(x)
            expected = {"out": out}
        else:
            x = t["x"].to(dtype).requires_grad_()
            out = module(x)
            expected = {"out": out, "grad.x": x.grad}
        (out * t["w"].to(dtype)).sum().backward()
        if x.requires_grad:
            expected["grad.x"] = x.grad
        for name, p in module.named_parameters():
            expected["grad." + name[len(prefix):]] = p.grad
        for name, b in module.named_buffers():
            expected["after." + name[len(prefix):]] = b
        worst, bad = 0.0, []
        for name, value in expected.items():
            if name not in t:
                bad.append(f"{name} missing from Keel's dump")
                continue
            ref = value.detach().double()
            got = t[name]
            if tuple(got.shape) != tuple(ref.shape):
                bad.append(f"{name}: shape {tuple(got.shape)} vs torch {tuple(ref.shape)}")
                continue
            scale = max(1.0, ref.abs().max().item()) if ref.numel() else 1.0
            err = (got - ref).abs().max().item() / scale if ref.numel() else 0.0
            worst = max(worst, err)
            if not err <= tol:
                bad.append(f"{name}: max error {err:.3e} (tolerance {tol:.0e})")
        extra = [n for n in t if (n.startswith("grad.") or n.startswith("after.")) and n not in expected]
        bad += [f"{n}: Keel has it, torch does not" for n in extra]
        status = "ok" if not bad else "FAIL"
        print(f"{case['id']:32s} {status}  max relative error {worst:.2e}")
        for line in bad:
            print("   ", line)
        failures += bool(bad)

    for model in index["models"]:
        if model["id"] == "small_cnn":
            ref = small_cnn(model["args"]["channels"], dropout=0.25)
        elif model["id"] == "transformer_block":
            ref = Block(model["args"]["embed"], model["args"]["heads"])
        elif model["id"] == "mlp":
            s = model["args"]["sizes"]
            ref = tnn.Sequential(tnn.Linear(s[0], s[1]), tnn.ReLU(), tnn.Dropout(0.1), tnn.Linear(s[1], s[2]))
        else:
            raise ValueError(model["id"])
        torch_keys = [[k, list(v.shape)] for k, v in ref.state_dict().items()]
        same = torch_keys == model["keys"]
        print(f"keys {model['id']:27s} {'ok' if same else 'FAIL'}  ({len(torch_keys)} entries)")
        if not same:
            print("    torch:", torch_keys)
            print("    keel: ", model["keys"])
            failures += 1
    if failures:
        print(f"{failures} nn parity failure(s)")
        sys.exit(1)
    print("nn parity: all cases match torch", torch.__version__)


if __name__ == "__main__":
    main()
