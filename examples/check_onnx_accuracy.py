"""Runs the Fashion-MNIST model that examples/fashion_mnist exported (OUT/model.onnx) on the test
set in onnxruntime and checks that it gets exactly as many test images right as Keel did
(test_accuracy in OUT/summary.txt, 6 decimals of a fraction of 10000 images).

Usage: check_onnx_accuracy.py OUT_DIR [DATA_DIR]
The images are normalized as the example does: u8 -> f32, / 255, - 0.2860, / 0.3530 (f32 steps).
"""
import gzip
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort

MEAN, STD = 0.2860, 0.3530  # kMean, kStd in examples/fashion_mnist.cpp


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(data_dir, stem):
    for name in (stem + ".gz", stem):
        if os.path.exists(os.path.join(data_dir, name)):
            return os.path.join(data_dir, name)
    raise SystemExit(f"[check_onnx_accuracy] {stem}(.gz) not found in {data_dir}")


def main(out_dir, data_dir):
    model_path = os.path.join(out_dir, "model.onnx")
    onnx.checker.check_model(model_path, full_check=True)
    images = read_idx(find(data_dir, "t10k-images-idx3-ubyte"))
    labels = read_idx(find(data_dir, "t10k-labels-idx1-ubyte")).astype(np.int64)
    x = images.astype(np.float32)[:, None, :, :]
    x /= np.float32(255.0)
    x -= np.float32(MEAN)
    x /= np.float32(STD)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    correct = 0
    for start in range(0, len(x), 250):  # the example's evaluation chunks
        logits = session.run(["output"], {"input": x[start:start + 250]})[0]
        correct += int((logits.argmax(-1) == labels[start:start + 250]).sum())
    summary = dict(line.split(" ", 1) for line in open(os.path.join(out_dir, "summary.txt")).read().splitlines() if " " in line)
    keel_accuracy = float(summary["test_accuracy"])
    keel_correct = round(keel_accuracy * len(labels))
    print(f"onnxruntime: {correct}/{len(labels)} correct ({100.0 * correct / len(labels):.2f}%); "
          f"Keel: {keel_correct}/{len(labels)} ({100.0 * keel_accuracy:.2f}%)")
    if correct != keel_correct:
        print("[check_onnx_accuracy] onnxruntime and Keel disagree on the test accuracy")
        return 1
    print("onnx accuracy check: same test accuracy")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"))
