#pragma once
// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
// ..., "__metadata__": {"key": "value"}}, then the tensors' bytes (row-major, little-endian),
// offsets relative to the end of the header. Python's safetensors and PyTorch read what Keel
// writes and the other way round (tests/io). Dtypes: F64 F32 F16 BF16 I64 I32 I8 U8 BOOL.
//
// Writing is atomic (io/atomic_file.h): an interrupted save leaves the previous file whole.
// Reading checks everything the header claims against the file before allocating: header
// length within the file and at most 100 MB, valid JSON, known dtypes, shapes whose byte size
// matches their offsets, offsets inside the data and covering it exactly once, no duplicate
// names, BOOL bytes 0 or 1; a bad file gives keel::Error naming the file and the entry. All three
// readers (copying, memory-mapped, from memory) run the same checks before any tensor is made.
//
// Memory-mapped reads ({.mmap = true}) map the file MAP_PRIVATE with PROT_READ | PROT_WRITE and
// return each tensor as a view into the mapping (no copy, no allocation): an in-place write to a
// loaded tensor changes a private copy of its page only, never the file. Every tensor holds a
// shared reference to the mapping, which is unmapped when the last of them goes away (the
// SafetensorsContents itself may go first). Exceptions: a tensor whose data offset is not a
// multiple of its element size is copied (Python's writer and Keel's align every tensor), and
// empty tensors get their own storage. As with any mmap, truncating the file while tensors still
// view it makes reading them fault (SIGBUS); use the copying reader for files others may rewrite.
#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "keel/core/tensor.h"

namespace keel::io {

// Named tensors in order (nn::StateDict is this type).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Writes the tensors (any device; copied to contiguous CPU memory). The header lists them in the
// given order; their bytes go widest element first (stable), so each starts at a multiple of its
// element size, as Python's writer arranges them, and memory-mapped reads need no copy.
// Names must be unique and non-empty, and not "__metadata__".
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsContents {
  NamedTensors tensors;  // in the header's order (a file Keel wrote: the order given to save)
  std::map<std::string, std::string> metadata;
};
struct SafetensorsReadOptions {
  bool mmap = false;  // zero-copy views into a private mapping of the file (see above)
};
SafetensorsContents read_safetensors(const std::string& path, const SafetensorsReadOptions& options = {});
inline NamedTensors load_safetensors(const std::string& path) { return read_safetensors(path).tensors; }
inline SafetensorsContents mmap_safetensors(const std::string& path) { return read_safetensors(path, {.mmap = true}); }

// The same from a whole file's bytes in memory (the tensors are copied out; `name` is used in
// error messages only). The fuzz target tests/fuzz/fuzz_safetensors.cpp calls this.
SafetensorsContents parse_safetensors(std::span<const std::byte> bytes, const std::string& name = "<memory>");

}  // namespace keel::io
