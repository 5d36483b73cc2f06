#pragma once
// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
//
//   bytes 0-1   0x00 0x00 (magic)
//   byte  2     element type: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64
//   byte  3     number of dims d
//   4 * d bytes each dim, a big-endian u32
//   the data, row-major, each element big-endian; nothing after it
//
// read_idx gives a tensor of that shape and type (i16 becomes i32: Keel has no int16). Every size
// in the header is checked against bounds and against the bytes actually present before anything
// is allocated from it; any fault throws keel::Error naming the file, and nothing is returned.
#include <cstdint>
#include <string>
#include <vector>

#include "keel/core/tensor.h"

namespace keel::data {

struct IdxOptions {
  int max_dims = 8;                            // a header with more dims is corrupt
  uint64_t max_bytes = uint64_t{16} << 30;     // the largest data section accepted (16 GiB)
};

// What an IDX file held: the element type code from its header, its dims, and the data.
struct Idx {
  uint8_t type_code = 0;  // 0x08 ... 0x0E as in the header
  Shape shape;
  Tensor tensor;          // u8, i8, i32 (from i16 or i32), f32 or f64, contiguous, on the CPU
};

// Files whose first two bytes are gzip's magic (1f 8b) are decompressed through zlib, others
// are read as they are. The name does not matter.
Idx load_idx(const std::string& path, const IdxOptions& options = {});
Tensor read_idx(const std::string& path, const IdxOptions& options = {});

// The same from bytes in memory (`name` is used in error messages only).
Idx parse_idx(const std::vector<uint8_t>& bytes, const std::string& name = "<memory>",
              const IdxOptions& options = {});

}  // namespace keel::data
