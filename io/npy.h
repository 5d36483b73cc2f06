#pragma once
// numpy's .npy and .npz files (numpy/lib/format.py, numpy.savez), for exchanging tensors with
// numpy: np.load reads what Keel writes and Keel reads what np.save, np.savez and
// np.savez_compressed write.
//
// .npy: "\x93NUMPY", version (1.0, 2.0 or 3.0), a little-endian header length (uint16 in 1.0,
// uint32 in 2.0 / 3.0), a Python dict literal header
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and a newline, then the elements.
// dtypes: <f8 <f4 <f2 <i8 <i4 |i1 |u1 |b1 <-> f64 f32 f16 i64 i32 i8 u8 bool. numpy has no
// bfloat16: saving a bf16 tensor is an error that says to convert it (.to(f32) holds every
// bf16 value exactly), so that a round trip never changes a dtype silently.
// Reading also accepts big-endian data ('>f4', byte-swapped on load) and fortran_order True
// (column-major data, made row-major on load); other dtypes (int16, uint32, complex, strings,
// structured, object arrays) are refused with the descr in the message.
//
// .npz: a zip archive with one "<name>.npy" entry per tensor. save_npz writes stored
// (uncompressed) entries with their CRC-32, as numpy.savez does; load_npz reads stored and
// deflated (numpy.savez_compressed) entries and checks each CRC. Archives whose sizes or
// offsets pass 4 GiB need ZIP64: Keel reads ZIP64 records but does not write them, and
// save_npz says so instead of writing a broken file (use safetensors for such checkpoints).
//
// Writes are atomic (io/atomic_file.h). Files are untrusted: every length, offset, shape and
// size is checked against the bytes actually present before anything is allocated or read,
// and a bad file gives keel::Error naming the file (and the entry), never a crash.
#include <cstdint>
#include <span>
#include <string>

#include "keel/core/tensor.h"
#include "keel/io/safetensors.h"  // NamedTensors

namespace keel::io {

// Any device and layout; written as a contiguous row-major CPU copy.
void save_npy(const std::string& path, const Tensor& tensor);
Tensor load_npy(const std::string& path);

// Entry "<name>.npy" per tensor, in order; names must be unique and non-empty.
void save_npz(const std::string& path, const NamedTensors& tensors);
// Names without the ".npy" suffix, in the order of the archive's central directory.
NamedTensors load_npz(const std::string& path);

// The parsers behind load_npy / load_npz, on bytes in memory (fuzz targets call them).
// `name` names the source in error messages. The result owns its memory.
Tensor parse_npy(std::span<const uint8_t> bytes, const std::string& name);
NamedTensors parse_npz(std::span<const uint8_t> bytes, const std::string& name);

}  // namespace keel::io
