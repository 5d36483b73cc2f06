#pragma once
// Sequential byte readers for the file formats in io/: a plain file, bytes in memory, and a
// gzip stream (zlib's inflate) over either. Internal to io/.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace keel::data::detail {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `count` bytes; fewer only at the end of the data. Throws keel::Error on an I/O
  // error or corrupt compressed data (prefixed with `context`).
  virtual size_t read(uint8_t* out, size_t count) = 0;
  // Bytes left when the source knows (plain files and memory), nullopt for compressed streams.
  virtual std::optional<uint64_t> remaining() const = 0;
};

// Opens `path`: a gzip stream when its first two bytes are 1f 8b, the raw bytes otherwise.
// `context` ("[read_idx] /path/file") starts every error message.
std::unique_ptr<ByteSource> open_file(const std::string& path, const std::string& context);
std::unique_ptr<ByteSource> open_memory(const uint8_t* data, size_t size, const std::string& context);

// Reads exactly `count` bytes or throws "<context>: <what> ends early ...".
void read_exact(ByteSource& source, uint8_t* out, size_t count, const std::string& context,
                const char* what);

}  // namespace keel::data::detail
