"""Reads the event file that tensorboard_dump.cpp wrote (OUT_DIR/tb) back with the tensorboard
package and compares it with OUT_DIR/expected.json: scalar tags, steps, wall times and values;
histograms recomputed here with numpy exactly as torch.utils.tensorboard does it (bucket
limits, counts, min, max, num, sum, sum of squares); text. Every record's framing and both
masked CRC-32Cs are also checked by a pure-Python CRC-32C, so a bad CRC fails the test even
if a reader were lenient."""
import glob
import json
import math
import os
import struct
import sys

import numpy as np
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def records(path):
    data = open(path, "rb").read()
    at = 0
    out = []
    while at < len(data):
        if len(data) - at < 12:
            raise SystemExit(f"truncated record header at byte {at}")
        (length,) = struct.unpack_from("<Q", data, at)
        (length_crc,) = struct.unpack_from("<I", data, at + 8)
        if length_crc != masked(crc32c(data[at : at + 8])):
            raise SystemExit(f"bad length CRC at byte {at}")
        body = data[at + 12 : at + 12 + length]
        if len(body) != length or len(data) < at + 16 + length:
            raise SystemExit(f"truncated record at byte {at}")
        (body_crc,) = struct.unpack_from("<I", data, at + 12 + length)
        if body_crc != masked(crc32c(body)):
            raise SystemExit(f"bad data CRC at byte {at}")
        out.append(body)
        at += 16 + length
    return out


def default_bins():
    # torch/utils/tensorboard/writer.py
    v = 1e-12
    buckets = []
    while v < 1e20:
        buckets.append(v)
        v *= 1.1
    return [-b for b in buckets[::-1]] + [0] + buckets


def make_histogram(values):
    # torch.utils.tensorboard.summary.make_histogram without max_bins
    values = np.asarray(values, dtype=float).reshape(-1)
    counts, limits = np.histogram(values, bins=default_bins())
    cum_counts = np.cumsum((counts > 0).astype(np.int32))  # torch: np.greater(..., dtype=int32)
    start, end = np.searchsorted(cum_counts, [0, cum_counts[-1] - 1], side="right")
    start, end = int(start), int(end) + 1
    counts = counts[start - 1 : end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start : end + 1]
    return dict(min=values.min(), max=values.max(), num=len(values), sum=values.sum(),
                sum_squares=values.dot(values), bucket_limit=limits.tolist(), bucket=counts.tolist())


def close(a, b, rel=1e-12):
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def main():
    out_dir = sys.argv[1]
    expected = json.load(open(os.path.join(out_dir, "expected.json")))
    files = glob.glob(os.path.join(out_dir, "tb", "events.out.tfevents.*"))
    if len(files) != 1:
        raise SystemExit(f"expected one event file, found {files}")
    path = files[0]
    name_parts = os.path.basename(path).split(".")
    check(len(name_parts) >= 7 and name_parts[3].isdigit() and len(name_parts[3]) == 10,
          f"file name {os.path.basename(path)} is not events.out.tfevents.<10-digit time>.<host>.<pid>.<n>")

    # 1. Framing and CRCs, by hand; the first event is the file version.
    bodies = records(path)
    first = event_pb2.Event.FromString(bodies[0])
    check(first.file_version == "brain.Event:2", f"first event is {first}")
    n_expected = 1 + len(expected["scalars"]) + len(expected["histograms"]) + len(expected["texts"])
    check(len(bodies) == n_expected, f"{len(bodies)} records, expected {n_expected}")
    # tensorboard's own record reader (it checks the CRCs too) sees the same records.
    raw = list(RawEventFileLoader(path).Load())
    check(raw == bodies, "tensorboard's RawEventFileLoader read different records")

    # 2. Everything through EventAccumulator.
    acc = event_accumulator.EventAccumulator(
        os.path.join(out_dir, "tb"),
        size_guidance={event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0,
                       event_accumulator.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()

    by_tag = {}
    for tag, step, value, wall_time in expected["scalars"]:
        by_tag.setdefault(tag, []).append((step, value, wall_time))
    check(sorted(tags["scalars"]) == sorted(by_tag), f"scalar tags {tags['scalars']} vs {sorted(by_tag)}")
    for tag, rows in by_tag.items():
        got = acc.Scalars(tag) if tag in tags["scalars"] else []
        check(len(got) == len(rows), f"{tag}: {len(got)} scalars, expected {len(rows)}")
        for event, (step, value, wall_time) in zip(got, rows):
            check(event.step == step, f"{tag}: step {event.step} vs {step}")
            # simple_value is a float32
            check(event.value == float(np.float32(value)), f"{tag}@{step}: {event.value} vs {value}")
            check(event.wall_time == wall_time, f"{tag}@{step}: wall time {event.wall_time} vs {wall_time}")

    check(sorted(tags["histograms"]) == sorted(h[0] for h in expected["histograms"]),
          f"histogram tags {tags['histograms']}")
    for tag, step, values in expected["histograms"]:
        events = acc.Histograms(tag) if tag in tags["histograms"] else []
        check(len(events) == 1, f"{tag}: {len(events)} histogram events")
        if not events:
            continue
        check(events[0].step == step, f"{tag}: step {events[0].step} vs {step}")
        got = events[0].histogram_value
        want = make_histogram(values)
        check(got.bucket_limit == want["bucket_limit"], f"{tag}: bucket limits differ "
              f"({len(got.bucket_limit)} vs {len(want['bucket_limit'])})")
        if got.bucket != want["bucket"]:
            first = next((i for i, (a, b) in enumerate(zip(got.bucket, want["bucket"])) if a != b),
                         min(len(got.bucket), len(want["bucket"])))
            check(False, f"{tag}: bucket counts differ first at bucket {first} (of {len(got.bucket)} and "
                  f"{len(want['bucket'])}): {list(got.bucket[first:first + 3])} vs {want['bucket'][first:first + 3]}")
        for key in ("min", "max", "num"):
            check(getattr(got, key) == want[key], f"{tag}: {key} {getattr(got, key)} vs {want[key]}")
        for key in ("sum", "sum_squares"):
            check(close(getattr(got, key), want[key]), f"{tag}: {key} {getattr(got, key)} vs {want[key]}")

    want_text_tags = sorted(t[0] + "/text_summary" for t in expected["texts"])
    check(sorted(tags["tensors"]) == want_text_tags, f"tensor tags {tags['tensors']} vs {want_text_tags}")
    for tag, step, text in expected["texts"]:
        full_tag = tag + "/text_summary"
        events = acc.Tensors(full_tag) if full_tag in tags["tensors"] else []
        check(len(events) == 1, f"{full_tag}: {len(events)} events")
        if not events:
            continue
        proto = events[0].tensor_proto
        check(events[0].step == step, f"{full_tag}: step")
        check(proto.dtype == 7 and [d.size for d in proto.tensor_shape.dim] == [1],
              f"{full_tag}: not a DT_STRING tensor of shape [1]: {proto}")
        check(len(proto.string_val) == 1 and proto.string_val[0].decode("utf-8") == text,
              f"{full_tag}: {proto.string_val} vs {text!r}")
        metadata = acc.SummaryMetadata(full_tag)
        check(metadata.plugin_data.plugin_name == "text", f"{full_tag}: plugin {metadata.plugin_data.plugin_name}")

    # 3. If torch is importable, its own make_histogram must agree with the one above.
    try:
        from torch.utils.tensorboard.summary import make_histogram as torch_make_histogram
    except Exception:
        torch_make_histogram = None
    if torch_make_histogram is not None:
        try:
            for tag, step, values in expected["histograms"]:
                ref = torch_make_histogram(np.asarray(values, dtype=float), default_bins())
                check(list(ref.bucket) == make_histogram(values)["bucket"], f"{tag}: torch's make_histogram differs")
        except TypeError:  # torch 1.13 calls np.greater(..., dtype=np.int32), which numpy 1.24 refuses
            torch_make_histogram = None

    print(f"compare_tensorboard: {len(bodies)} records, {len(expected['scalars'])} scalars, "
          f"{len(expected['histograms'])} histograms, {len(expected['texts'])} texts; "
          f"torch cross-check {'on' if torch_make_histogram else 'off'}")
    if failures:
        for f in failures:
            print("FAIL:", f)
        sys.exit(1)
    print("compare_tensorboard: all checks passed")


main()
