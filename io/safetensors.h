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
// names; a bad file gives keel::Error naming the file and the entry.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "keel/core/tensor.h"

namespace keel::io {

// Named tensors in order (nn::StateDict is this type).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Writes the tensors (any device; copied to contiguous CPU memory) in the given order.
// Names must be unique and non-empty, and not "__metadata__".
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct SafetensorsContents {
  NamedTensors tensors;  // in the order of their data in the file
  std::map<std::string, std::string> metadata;
};
SafetensorsContents read_safetensors(const std::string& path);
inline NamedTensors load_safetensors(const std::string& path) { return read_safetensors(path).tensors; }

}  // namespace keel::io
