"""numpy interop, numpy's side (run_npy_parity.cmake runs `write`, then npy_parity_dump, then
`check`).

write OUT_DIR: np.save / np.savez / np.savez_compressed / format.write_array files into
    OUT_DIR/numpy: every dtype Keel reads, 0-d and empty arrays, bool, Fortran order,
    big-endian data, header versions 1.0, 2.0 and 3.0, Python-2 style 'L' shapes.
check OUT_DIR: np.load reads every file Keel wrote (OUT_DIR/keel) and compares it with the same
    formulas computed here; Keel's readings of numpy's files (OUT_DIR/keel_read.json) are
    compared with np.load's."""
import io
import json
import os
import sys
import zipfile

import numpy as np

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def floats(n):
    i = np.arange(n)
    return ((i * 7) % 23) * 0.25 - 2.5


def keel_expected():
    """The tensors npy_parity_dump.cpp writes, computed here from the same formulas."""
    def shaped(values, shape, dtype):
        return np.asarray(values).reshape(shape).astype(dtype)

    i = np.arange
    t = {
        "f32": shaped(floats(60), (3, 4, 5), np.float32),
        "f64": shaped(floats(7), (7,), np.float64),
        "f16": shaped(floats(6), (2, 3), np.float16),
        "i64": shaped(i(8) * 1000003 - 5000000, (4, 2), np.int64),
        "i64_big": np.array([2**63 - 1, -(2**63), -1], dtype=np.int64),
        "i32": shaped(i(5) * 7919 - 100000, (5,), np.int32),
        "i8": shaped((i(256) * 37) % 256 - 128, (16, 16), np.int8),
        "u8": shaped((i(6) * 37) % 256, (3, 1, 2), np.uint8),
        "bool": shaped(i(9) % 3 == 0, (9,), np.bool_),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 3), np.float32),
        "empty_1d": np.zeros((0,), np.int64),
        "transposed": shaped(floats(20), (4, 5), np.float32).T,
        "special": np.array([np.nan, np.inf, -np.inf, -0.0, 1e-310, 1.7976931348623157e308]),
    }
    return t


def same(a, b):
    """Same dtype, shape and values (NaN equal to NaN, -0.0 not equal to 0.0)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b)))
    return bool(np.array_equal(a, b))


def numpy_cases():
    """What numpy writes: file name -> {key: array} (key "" for .npy files)."""
    rng = np.random.default_rng(5)
    cube = rng.standard_normal((3, 4, 5)).astype(np.float32)
    return {
        "f4.npy": cube,
        "f8.npy": rng.standard_normal((6, 2)),
        "f2.npy": rng.standard_normal((5,)).astype(np.float16),
        "i8.npy": rng.integers(-(2**62), 2**62, (4, 3), dtype=np.int64),
        "i4.npy": rng.integers(-(2**31), 2**31, (7,), dtype=np.int32),
        "i1.npy": rng.integers(-128, 128, (2, 5), dtype=np.int8),
        "u1.npy": rng.integers(0, 256, (9,), dtype=np.uint8),
        "bool.npy": rng.integers(0, 2, (3, 3)).astype(np.bool_),
        "scalar.npy": np.array(-7.25),
        "scalar_i64.npy": np.array(42, dtype=np.int64),
        "empty.npy": np.zeros((0, 4), np.float32),
        "empty_mid.npy": np.zeros((2, 0, 3), np.int32),
        "fortran.npy": np.asfortranarray(cube),
        "fortran_2d_i8.npy": np.asfortranarray(np.arange(12, dtype=np.int8).reshape(3, 4)),
        "big_f4.npy": cube.astype(">f4"),
        "big_i8.npy": np.arange(-5, 5, dtype=">i8").reshape(2, 5),
        "big_f2_fortran.npy": np.asfortranarray(rng.standard_normal((3, 2)).astype(">f2")),
        "special.npy": np.array([np.nan, -np.inf, np.inf, -0.0, 5e-324]),
    }


def write(out_dir):
    folder = os.path.join(out_dir, "numpy")
    os.makedirs(folder, exist_ok=True)
    cases = numpy_cases()
    for name, array in cases.items():
        np.save(os.path.join(folder, name), array)
    # Header versions 2.0 and 3.0 (3.0: UTF-8 header), and a Python-2 style header with 'L'.
    for version in [(2, 0), (3, 0)]:
        with open(os.path.join(folder, f"version{version[0]}.npy"), "wb") as f:
            np.lib.format.write_array(f, cases["f4.npy"], version=version)
    header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2L, 3L), }"
    header = header + " " * (64 - (10 + len(header) + 1) % 64) + "\n"
    with open(os.path.join(folder, "python2_header.npy"), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1"))
        f.write(np.arange(6, dtype="<i4").tobytes())
    archive = {k[:-4]: v for k, v in cases.items()}
    np.savez(os.path.join(folder, "savez.npz"), **archive)
    np.savez_compressed(os.path.join(folder, "savez_compressed.npz"), **archive)
    np.savez(os.path.join(folder, "savez_positional.npz"), cases["f8.npy"], cases["bool.npy"])
    np.savez_compressed(os.path.join(folder, "savez_compressed_empty.npz"))
    # A large compressible entry: deflate output far larger than its input.
    np.savez_compressed(os.path.join(folder, "zeros_compressed.npz"), zeros=np.zeros((512, 1024), np.float32))


DTYPE_NAMES = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "int64": np.int64,
               "int32": np.int32, "int8": np.int8, "uint8": np.uint8, "bool": np.bool_}


def from_keel(entry):
    values = np.array(entry["values"], dtype=np.float64 if entry["dtype"].startswith("float") else np.int64)
    if entry["dtype"] == "int64":
        values = np.array([int(v) for v in entry["values"]], dtype=np.int64)
    return values.astype(DTYPE_NAMES[entry["dtype"]]).reshape(entry["shape"])


def check_all(out_dir):
    # Keel -> numpy.
    expected = keel_expected()
    keel_dir = os.path.join(out_dir, "keel")
    for name, want in expected.items():
        path = os.path.join(keel_dir, name + ".npy")
        got = np.load(path, allow_pickle=False)
        want = np.array(want, order="C")  # ascontiguousarray would make 0-d arrays 1-d
        check(same(got, want), f"keel/{name}.npy: numpy reads {got.dtype} {got.shape} {got.ravel()[:6]}, "
              f"expected {want.dtype} {want.shape} {want.ravel()[:6]}")
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            header_end = f.seek(0, 1) + 2  # read_magic leaves the file after the version
        data_offset = os.path.getsize(path) - want.nbytes
        check(version == (1, 0) and data_offset % 64 == 0, f"keel/{name}.npy: version {version}, data at {data_offset}")
    archive_path = os.path.join(keel_dir, "keel.npz")
    with zipfile.ZipFile(archive_path) as z:
        check(z.testzip() is None, "keel.npz: a CRC does not match (zipfile.testzip)")
        check(all(info.compress_type == zipfile.ZIP_STORED for info in z.infolist()), "keel.npz: not all entries stored")
    with np.load(archive_path, allow_pickle=False) as npz:
        more = {"layer1/weight": floats(4).reshape(2, 2).astype(np.float32), "größe": floats(2)}
        want_all = {**{k: np.array(v, order="C") for k, v in expected.items()}, **more}
        check(list(npz.keys()) == list(want_all.keys()), f"keel.npz keys {list(npz.keys())}")
        for key, want in want_all.items():
            if key in npz:
                check(same(npz[key], want), f"keel.npz[{key}] differs")

    # numpy -> Keel.
    read = json.load(open(os.path.join(out_dir, "keel_read.json"), encoding="utf-8"))
    folder = os.path.join(out_dir, "numpy")
    files = sorted(f for f in os.listdir(folder) if f.endswith((".npy", ".npz")))
    check(sorted(read) == files, f"Keel read {sorted(read)}, numpy wrote {files}")
    count = 0
    for file in files:
        loaded = np.load(os.path.join(folder, file), allow_pickle=False)
        want = {"": loaded} if file.endswith(".npy") else {k: loaded[k] for k in loaded.keys()}
        got = read.get(file, {})
        check(list(got) == list(want), f"{file}: Keel read keys {list(got)}, numpy has {list(want)}")
        for key, array in want.items():
            if key not in got:
                continue
            count += 1
            mine = from_keel(got[key])
            # Keel converts big-endian to native and Fortran order to C order.
            ref = np.array(array, order="C").astype(array.dtype.newbyteorder("="))
            check(same(mine, ref), f"{file}[{key}]: Keel read {mine.dtype} {mine.shape} {mine.ravel()[:6]}, "
                  f"numpy has {ref.dtype} {ref.shape} {ref.ravel()[:6]}")
    print(f"compare_npy: numpy read {len(expected)} .npy files and {len(want_all)} npz entries from Keel; "
          f"Keel read {count} arrays from {len(files)} numpy files")


def main():
    mode, out_dir = sys.argv[1], sys.argv[2]
    if mode == "write":
        write(out_dir)
        return
    check_all(out_dir)
    if failures:
        for f in failures:
            print("FAIL:", f)
        sys.exit(1)
    print("compare_npy: all checks passed")


main()
