// IDX reader (format in idx.h). The header is read and checked first: magic, type code, dims
// in 1..max_dims, each dim and their product computed without overflow and bounded by
// max_bytes. For a plain file the data size must equal the bytes left in the file before
// anything is allocated; for a gzip stream (whose length is unknown until it is inflated) the
// data is read in growing chunks, so a header that lies costs no more memory than the data
// that is really there. After the data the stream must end (a gzip stream with a valid trailer).
#include "keel/io/idx.h"

#include <algorithm>
#include <cstring>

#include "keel/core/error.h"
#include "keel/io/byte_source.h"

namespace keel::data {
namespace {

struct IdxType {
  uint8_t code;
  const char* name;
  size_t file_size;  // bytes per element in the file
  DType dtype;       // what Keel stores it as
};
constexpr IdxType kIdxTypes[] = {
    {0x08, "u8", 1, DType::u8},   {0x09, "i8", 1, DType::i8},   {0x0B, "i16", 2, DType::i32},
    {0x0C, "i32", 4, DType::i32}, {0x0D, "f32", 4, DType::f32}, {0x0E, "f64", 8, DType::f64},
};

const IdxType* find_type(uint8_t code) {
  for (const IdxType& type : kIdxTypes)
    if (type.code == code) return &type;
  return nullptr;
}

std::string hex(uint8_t value) {
  const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[value >> 4] + digits[value & 15];
}

// Big-endian file elements -> native values in the tensor.
void decode(const uint8_t* in, const IdxType& type, uint64_t count, void* out) {
  switch (type.code) {
    case 0x08:
    case 0x09: std::memcpy(out, in, count); break;
    case 0x0B: {
      auto* values = static_cast<int32_t*>(out);
      for (uint64_t i = 0; i < count; ++i)
        values[i] = static_cast<int16_t>(static_cast<uint16_t>((in[2 * i] << 8) | in[2 * i + 1]));
      break;
    }
    case 0x0C:
    case 0x0D: {
      auto* values = static_cast<uint32_t*>(out);
      for (uint64_t i = 0; i < count; ++i) {
        const uint8_t* b = in + 4 * i;
        values[i] = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
      }
      break;
    }
    case 0x0E: {
      auto* values = static_cast<uint64_t*>(out);
      for (uint64_t i = 0; i < count; ++i) {
        uint64_t v = 0;
        for (int k = 0; k < 8; ++k) v = (v << 8) | in[8 * i + k];
        values[i] = v;
      }
      break;
    }
  }
}

Idx read_from(detail::ByteSource& source, const std::string& context, const IdxOptions& options) {
  uint8_t magic[4];
  const size_t got = source.read(magic, 4);
  KEEL_CHECK(got == 4, context, ": not an IDX file: ", got, " bytes, shorter than the 4-byte header");
  KEEL_CHECK(magic[0] == 0 && magic[1] == 0, context, ": not an IDX file: the first two bytes are ",
             hex(magic[0]), " ", hex(magic[1]), ", expected 0x00 0x00");
  const IdxType* type = find_type(magic[2]);
  KEEL_CHECK(type != nullptr, context, ": unknown IDX element type code ", hex(magic[2]),
             " (known: 0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, 0x0d f32, 0x0e f64)");
  const int dims = magic[3];
  KEEL_CHECK(dims >= 1 && dims <= options.max_dims, context, ": the header gives ", dims,
             " dims; expected 1 to ", options.max_dims);

  std::vector<uint8_t> dim_bytes(4 * static_cast<size_t>(dims));
  detail::read_exact(source, dim_bytes.data(), dim_bytes.size(), context, "the header's dims");
  Shape shape(dims);
  uint64_t count = 1;
  bool overflow = false;
  for (int d = 0; d < dims; ++d) {
    const uint8_t* b = &dim_bytes[4 * d];
    const uint64_t size = (uint64_t{b[0]} << 24) | (uint64_t{b[1]} << 16) | (uint64_t{b[2]} << 8) | b[3];
    shape[d] = static_cast<int64_t>(size);
    overflow = overflow || __builtin_mul_overflow(count, size, &count);
  }
  uint64_t bytes = 0;
  overflow = overflow || __builtin_mul_overflow(count, uint64_t{type->file_size}, &bytes);
  KEEL_CHECK(!overflow && bytes <= options.max_bytes, context, ": the header's dims ", shape,
             " (", type->name, ") describe more than ", options.max_bytes,
             " bytes of data (IdxOptions::max_bytes); the header is corrupt");

  if (const auto left = source.remaining()) {
    KEEL_CHECK(*left == bytes, context, ": the header's dims ", shape, " (", type->name, ") need ",
               bytes, " bytes of data but the file has ", *left,
               *left < bytes ? " (the file is truncated or the header is corrupt)"
                             : " (extra bytes after the data: the file is damaged)");
  }
  // Read in growing chunks: a gzip stream's true length shows only as it is inflated.
  std::vector<uint8_t> raw;
  uint64_t done = 0;
  while (done < bytes) {
    const uint64_t chunk = std::min<uint64_t>(bytes - done, std::max<uint64_t>(done, 1 << 20));
    raw.resize(done + chunk);
    const size_t read = source.read(raw.data() + done, chunk);
    done += read;
    KEEL_CHECK(read == chunk, context, ": the header's dims ", shape, " (", type->name, ") need ",
               bytes, " bytes of data but only ", done,
               " are present (the file is truncated or the header is corrupt)");
  }
  uint8_t extra;
  KEEL_CHECK(source.read(&extra, 1) == 0, context,
             ": extra bytes after the data the header describes (the file is damaged)");

  Idx result;
  result.type_code = type->code;
  result.shape = shape;
  result.tensor = empty(shape, {.dtype = type->dtype});
  if (count > 0) decode(raw.data(), *type, count, result.tensor.raw_data());
  return result;
}

}  // namespace

Idx load_idx(const std::string& path, const IdxOptions& options) {
  const std::string context = "[read_idx] " + path;
  auto source = detail::open_file(path, context);
  return read_from(*source, context, options);
}

Tensor read_idx(const std::string& path, const IdxOptions& options) {
  return load_idx(path, options).tensor;
}

Idx parse_idx(const std::vector<uint8_t>& bytes, const std::string& name, const IdxOptions& options) {
  const std::string context = "[read_idx] " + name;
  auto source = detail::open_memory(bytes.data(), bytes.size(), context);
  return read_from(*source, context, options);
}

}  // namespace keel::data
