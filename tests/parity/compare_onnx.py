"""ONNX export parity, the ecosystem's side: every model onnx_export_dump exported passes
onnx.checker.check_model(full_check=True) and, run in onnxruntime (CPU) at each batch size from
the one exported file (dynamic batch), gives Keel's outputs within 1e-4 (max abs difference).

Usage: compare_onnx.py OUT_DIR
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file

TOLERANCE = 1e-4
# Weights are initializers named as in the module's state_dict.
EXPECTED_INITIALIZERS = {
    "small_cnn": ["features.0.weight", "features.1.running_mean", "features.1.running_var", "classifier.2.weight"],
    "gpt": ["transformer.wte.weight", "transformer.h.0.attn.in_proj_weight", "transformer.ln_f.weight"],
    "mlp_external": ["0.weight", "0.bias"],
}


def main(out_dir):
    with open(os.path.join(out_dir, "index.json")) as f:
        cases = json.load(f)
    failures = 0
    for case in cases:
        path = os.path.join(out_dir, case["model"])
        onnx.checker.check_model(path, full_check=True)
        model = onnx.load(path)  # loads external data too
        assert model.opset_import[0].version >= 17, model.opset_import
        assert model.ir_version >= 8, model.ir_version
        if case["external"]:
            assert os.path.exists(path + ".data"), "no external data file"
            assert any(t.data_location == onnx.TensorProto.EXTERNAL for t in onnx.load(path, load_external_data=False).graph.initializer)
        names = {t.name for t in model.graph.initializer}
        for expected in EXPECTED_INITIALIZERS.get(case["name"], []):
            assert expected in names, (case["name"], expected, sorted(names))
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        input_names = [i.name for i in session.get_inputs()]
        output_names = [o.name for o in session.get_outputs()]
        for i in session.get_inputs():
            assert i.shape[0] == "batch", (case["name"], i.name, i.shape)
        diffs = []
        for batch_file in case["batches"]:
            tensors = load_file(os.path.join(out_dir, batch_file))
            feeds = {k[3:]: v for k, v in tensors.items() if k.startswith("in:")}
            expected = {k[4:]: v for k, v in tensors.items() if k.startswith("out:")}
            assert sorted(feeds) == sorted(input_names), (feeds.keys(), input_names)
            assert sorted(expected) == sorted(output_names), (expected.keys(), output_names)
            got = session.run(output_names, feeds)
            worst = 0.0
            for name, value in zip(output_names, got):
                want = expected[name]
                assert value.shape == want.shape, (case["name"], name, value.shape, want.shape)
                assert value.dtype == want.dtype, (case["name"], name, value.dtype, want.dtype)
                worst = max(worst, float(np.max(np.abs(value.astype(np.float64) - want.astype(np.float64)))) if value.size else 0.0)
            batch = next(iter(feeds.values())).shape[0]
            diffs.append((batch, worst))
            if not worst <= TOLERANCE:
                failures += 1
        text = ", ".join(f"batch {b}: {d:.2e}" for b, d in diffs)
        status = "ok" if all(d <= TOLERANCE for _, d in diffs) else "FAIL"
        print(f"{status:4} {case['name']:28} max abs diff {text}")
    print(f"{len(cases)} exported models, {failures} failures (tolerance {TOLERANCE})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
