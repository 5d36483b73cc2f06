#include "keel/io/npy.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <string_view>
#include <vector>

#include "keel/core/error.h"
#include "keel/io/atomic_file.h"

namespace keel::io {

static_assert(std::endian::native == std::endian::little, "npy data is written as little-endian");

namespace {

// ---- dtypes ----------------------------------------------------------------------------------

struct NpyType {
  DType dtype;
  char kind;  // numpy's dtype.kind
  int size;   // bytes
};
constexpr NpyType kNpyTypes[] = {{DType::f64, 'f', 8}, {DType::f32, 'f', 4}, {DType::f16, 'f', 2},
                                 {DType::i64, 'i', 8}, {DType::i32, 'i', 4}, {DType::i8, 'i', 1},
                                 {DType::u8, 'u', 1},  {DType::bool_, 'b', 1}};

std::string descr_of(DType dtype, const std::string& tag) {
  KEEL_CHECK(dtype != DType::bf16, tag, " numpy has no bfloat16 dtype: convert the tensor with .to(f32) first "
             "(float32 holds every bfloat16 value exactly)");
  for (const auto& type : kNpyTypes)
    if (type.dtype == dtype) return std::string(type.size == 1 ? "|" : "<") + type.kind + std::to_string(type.size);
  fail(tag, " no numpy dtype for ", dtype_name(dtype));
}

// ---- reading the .npy header -----------------------------------------------------------------

uint64_t read_le(const uint8_t* p, int width) {
  uint64_t value = 0;
  for (int i = 0; i < width; ++i) value |= static_cast<uint64_t>(p[i]) << (8 * i);
  return value;
}

constexpr size_t kMaxHeaderBytes = 1 << 20;  // numpy's own limit is 10000 unless told otherwise
constexpr size_t kMaxDims = 64;              // numpy's NPY_MAXDIMS (32 before numpy 2.0)

// A Python literal dict of strings, booleans and tuples of integers: the subset numpy writes
// (numpy/lib/format.py, _write_array_header uses repr()). No escapes, nesting or expressions.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& context) : text_(text), context_(context) {}

  void skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r'))
      ++at_;
  }
  bool accept(char c) {
    skip_space();
    if (at_ < text_.size() && text_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!accept(c)) bad(std::string("expected '") + c + "'");
  }
  bool at_end() {
    skip_space();
    return at_ == text_.size();
  }
  std::string string_literal() {
    skip_space();
    if (at_ >= text_.size() || (text_[at_] != '\'' && text_[at_] != '"')) bad("expected a quoted string");
    const char quote = text_[at_++];
    const size_t end = text_.find(quote, at_);
    if (end == std::string_view::npos) bad("unterminated string");
    std::string value(text_.substr(at_, end - at_));
    if (value.find('\\') != std::string::npos) bad("escapes in strings are not supported");
    at_ = end + 1;
    return value;
  }
  bool boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair{std::string_view("True"), true}, std::pair{std::string_view("False"), false}})
      if (text_.substr(at_, word.size()) == word) {
        at_ += word.size();
        return value;
      }
    bad("expected True or False");
  }
  int64_t integer() {
    skip_space();
    if (at_ >= text_.size() || text_[at_] < '0' || text_[at_] > '9') bad("expected a non-negative integer");
    int64_t value = 0;
    while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') {
      const int digit = text_[at_++] - '0';
      if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) bad("a dimension overflows 64 bits");
      value = value * 10 + digit;
    }
    if (at_ < text_.size() && text_[at_] == 'L') ++at_;  // Python 2 longs: (3L, 4L)
    return value;
  }
  Shape shape() {
    expect('(');
    Shape dims;
    while (!accept(')')) {
      if (dims.size() == kMaxDims) bad("more than 64 dimensions");
      dims.push_back(integer());
      if (!accept(',')) {
        expect(')');
        break;
      }
    }
    return dims;
  }
  [[noreturn]] void bad(const std::string& what) const {
    const std::string shown(text_.substr(0, std::min<size_t>(text_.size(), 200)));
    fail(context_, ": bad header (", what, " at character ", at_, "): ", shown);
  }

 private:
  std::string_view text_;
  const std::string& context_;
  size_t at_ = 0;
};

struct NpyHeader {
  NpyType type{};
  bool big_endian = false;
  bool fortran_order = false;
  Shape shape;
  size_t data_offset = 0;
};

NpyType parse_descr(const std::string& descr, const std::string& context, bool& big_endian) {
  const auto refuse = [&](const char* why) -> NpyType {
    fail(context, ": dtype '", descr, "' ", why, "; Keel reads <f8 <f4 <f2 <i8 <i4 |i1 |u1 |b1 (and '>' "
         "big-endian forms); convert the array with numpy's .astype() first");
  };
  if (descr.size() < 2 || descr.size() > 4) return refuse("is not supported");
  size_t at = 0;
  char order = '=';
  if (descr[0] == '<' || descr[0] == '>' || descr[0] == '|' || descr[0] == '=') order = descr[at++];
  const char kind = descr[at++];
  int size = 0;
  for (; at < descr.size(); ++at) {
    if (descr[at] < '0' || descr[at] > '9') return refuse("is not supported");
    size = size * 10 + (descr[at] - '0');
  }
  for (const auto& type : kNpyTypes)
    if (type.kind == kind && type.size == size) {
      // '|' (not applicable) is only meaningful for single bytes; numpy never writes it otherwise.
      if (order == '|' && size > 1) return refuse("has no byte order");
      big_endian = order == '>' && size > 1;
      return type;
    }
  return refuse("is not supported");
}

NpyHeader parse_header(std::span<const uint8_t> bytes, const std::string& context) {
  static constexpr uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  KEEL_CHECK(bytes.size() >= 10, context, ": ", bytes.size(), " bytes, too short for an .npy file");
  KEEL_CHECK(std::memcmp(bytes.data(), kMagic, 6) == 0, context, ": not an .npy file (no \\x93NUMPY magic)");
  const int major = bytes[6], minor = bytes[7];
  KEEL_CHECK((major == 1 || major == 2 || major == 3) && minor == 0, context, ": .npy format version ", major, ".",
             minor, " is not supported (1.0, 2.0 and 3.0 are)");
  const size_t length_bytes = major == 1 ? 2 : 4;
  KEEL_CHECK(bytes.size() >= 8 + length_bytes, context, ": the file ends inside the header length");
  const uint64_t header_size = read_le(bytes.data() + 8, static_cast<int>(length_bytes));
  const size_t header_start = 8 + length_bytes;
  KEEL_CHECK(header_size <= bytes.size() - header_start, context, ": header length ", header_size,
             " runs past the end of the data (", bytes.size(), " bytes)");
  KEEL_CHECK(header_size <= kMaxHeaderBytes, context, ": header length ", header_size, " exceeds ", kMaxHeaderBytes);
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + header_start), header_size);

  HeaderParser parser(text, context);
  NpyHeader header;
  bool has_descr = false, has_order = false, has_shape = false;
  parser.expect('{');
  while (!parser.accept('}')) {
    const std::string key = parser.string_literal();
    parser.expect(':');
    bool* seen = nullptr;
    if (key == "descr") {
      seen = &has_descr;
      header.type = parse_descr(parser.string_literal(), context, header.big_endian);
    } else if (key == "fortran_order") {
      seen = &has_order;
      header.fortran_order = parser.boolean();
    } else if (key == "shape") {
      seen = &has_shape;
      header.shape = parser.shape();
    } else {
      parser.bad("unknown key '" + key + "' (structured or object arrays are not supported)");
    }
    if (*seen) parser.bad("key '" + key + "' appears twice");
    *seen = true;
    if (!parser.accept(',')) {
      parser.expect('}');
      break;
    }
  }
  if (!parser.at_end()) parser.bad("text after the dict");
  KEEL_CHECK(has_descr && has_order && has_shape, context,
             ": the header lacks one of 'descr', 'fortran_order', 'shape'");
  header.data_offset = header_start + header_size;
  return header;
}

void swap_bytes(uint8_t* data, size_t count, int size) {
  for (size_t i = 0; i < count; ++i, data += size) std::reverse(data, data + size);
}

Tensor parse_npy_in(std::span<const uint8_t> bytes, const std::string& context) {
  const NpyHeader header = parse_header(bytes, context);
  // Elements and bytes the shape needs, without overflow. Zero-sized dimensions make numel 0,
  // but the other dimensions still bound the strides, so their product must fit as well.
  const uint64_t limit = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / 8;
  uint64_t nonzero_product = 1;
  bool has_zero_dim = false;
  for (const int64_t dim : header.shape) {
    if (dim == 0) {
      has_zero_dim = true;
      continue;
    }
    KEEL_CHECK(static_cast<uint64_t>(dim) <= limit / nonzero_product, context, ": shape ", header.shape,
               " has more elements than fit in memory");
    nonzero_product *= static_cast<uint64_t>(dim);
  }
  const uint64_t numel = has_zero_dim ? 0 : nonzero_product;
  const uint64_t data_bytes = numel * static_cast<uint64_t>(header.type.size);
  const uint64_t present = bytes.size() - header.data_offset;
  KEEL_CHECK(present == data_bytes, context, ": shape ", header.shape, " of dtype ", dtype_name(header.type.dtype),
             " needs ", data_bytes, " bytes of data but ", present, " follow the header");

  const uint8_t* source = reinterpret_cast<const uint8_t*>(bytes.data()) + header.data_offset;
  Tensor out = empty(header.shape, TensorOptions{.dtype = header.type.dtype});
  if (data_bytes == 0) return out;
  auto* target = static_cast<uint8_t*>(out.raw_data());
  const size_t item = header.type.size;
  if (!header.fortran_order || header.shape.size() < 2) {
    std::memcpy(target, source, data_bytes);
  } else {
    // Fortran order (column-major): element (i0, ..., in-1) is at sum(i_k * stride_k) with
    // stride_0 = 1 and stride_k = stride_(k-1) * shape_(k-1). Walk the row-major output in order,
    // carrying the multi-index like an odometer.
    const size_t rank = header.shape.size();
    std::vector<uint64_t> stride(rank, 1);
    for (size_t d = 1; d < rank; ++d) stride[d] = stride[d - 1] * static_cast<uint64_t>(header.shape[d - 1]);
    std::vector<int64_t> index(rank, 0);
    uint64_t offset = 0;
    for (uint64_t i = 0; i < numel; ++i) {
      std::memcpy(target + i * item, source + offset * item, item);
      for (size_t d = rank; d-- > 0;) {
        offset += stride[d];
        if (++index[d] < header.shape[d]) break;
        offset -= stride[d] * static_cast<uint64_t>(index[d]);
        index[d] = 0;
      }
    }
  }
  if (header.big_endian) swap_bytes(target, numel, item);
  // A bool byte other than 0 / 1 would be undefined behaviour in C++; numpy reads it as True.
  if (header.type.dtype == DType::bool_)
    for (uint64_t i = 0; i < numel; ++i) target[i] = target[i] != 0;
  return out;
}

// ---- writing .npy ----------------------------------------------------------------------------

// numpy/lib/format.py _wrap_header: the magic, version and header together take a multiple of
// 64 bytes (so the data is aligned), padded with spaces and ended with a newline.
std::string npy_header(const Tensor& tensor, const std::string& tag) {
  std::string shape = "(";
  for (size_t d = 0; d < tensor.shape().size(); ++d) shape += (d ? ", " : "") + std::to_string(tensor.shape()[d]);
  if (tensor.shape().size() == 1) shape += ",";
  shape += ")";
  std::string dict = "{'descr': '" + descr_of(tensor.dtype(), tag) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t length_bytes = dict.size() + 1 + 64 + 10 < 65536 ? 2 : 4;
  const size_t padding = 64 - ((6 + 2 + length_bytes + dict.size() + 1) % 64);
  dict.append(padding, ' ');
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(length_bytes == 2 ? 1 : 2);
  out += '\0';
  for (size_t i = 0; i < length_bytes; ++i) out += static_cast<char>((dict.size() >> (8 * i)) & 0xFF);
  return out + dict;
}

std::vector<uint8_t> read_whole_file(const std::string& path, const std::string& tag) {
  std::ifstream file(path, std::ios::binary);
  KEEL_CHECK(file.is_open(), tag, ": cannot open the file (", std::strerror(errno), ")");
  file.seekg(0, std::ios::end);
  const auto end = file.tellg();
  KEEL_CHECK(end >= 0, tag, ": cannot read the file size (is it a regular file?)");
  file.seekg(0);
  std::vector<uint8_t> bytes(static_cast<size_t>(end));
  file.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  KEEL_CHECK(file.good() || bytes.empty(), tag, ": reading the file failed");
  return bytes;
}

// ---- zip (.npz) --------------------------------------------------------------------------------
// PKWARE's APPNOTE.TXT: each entry is a local file header, its name and extra field, then the
// (stored or deflated) data; a central directory repeats every header with the entry's offset;
// the end of central directory record (EOCD) at the end of the file locates the directory.
// ZIP64 records replace 16- and 32-bit counts, sizes and offsets that overflow (0xFFFF...).

constexpr uint32_t kLocalSignature = 0x04034b50, kCentralSignature = 0x02014b50, kEndSignature = 0x06054b50,
                   kZip64EndSignature = 0x06064b50, kZip64LocatorSignature = 0x07064b50;
constexpr uint16_t kDosDate1980 = (0 << 9) | (1 << 5) | 1;  // 1980-01-01, the earliest DOS date

void put16(std::string& out, uint64_t v) {
  for (int i = 0; i < 2; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}
void put32(std::string& out, uint64_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

uint32_t zlib_crc32(const uint8_t* data, uint64_t size, uint32_t crc = 0) {
  uLong value = crc;
  while (size > 0) {  // zlib's length is a uInt: feed at most 1 GiB at a time
    const uInt chunk = static_cast<uInt>(std::min<uint64_t>(size, 1u << 30));
    value = crc32(value, data, chunk);
    data += chunk;
    size -= chunk;
  }
  return static_cast<uint32_t>(value);
}

struct ZipEntry {
  std::string name;
  uint16_t flags = 0, method = 0;
  uint32_t crc = 0;
  uint64_t compressed_size = 0, size = 0, local_offset = 0;
  uint64_t data_offset = 0;  // from the local header
};

// Reads fixed-size little-endian fields with bounds checks.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, uint64_t at, const std::string& context, const char* what)
      : bytes_(bytes), at_(at), context_(context), what_(what) {}
  uint64_t take(int width) {
    KEEL_CHECK(at_ <= bytes_.size() && static_cast<uint64_t>(width) <= bytes_.size() - at_, context_, ": the ", what_,
               " at byte ", at_, " runs past the end of the file");
    const uint64_t value = read_le(bytes_.data() + at_, width);
    at_ += static_cast<uint64_t>(width);
    return value;
  }
  std::string_view text(uint64_t length) {
    KEEL_CHECK(at_ <= bytes_.size() && length <= bytes_.size() - at_, context_, ": the ", what_, " at byte ", at_,
               " runs past the end of the file");
    std::string_view out(reinterpret_cast<const char*>(bytes_.data() + at_), length);
    at_ += length;
    return out;
  }
  uint64_t at() const { return at_; }

 private:
  std::span<const uint8_t> bytes_;
  uint64_t at_;
  const std::string& context_;
  const char* what_;
};

std::vector<uint8_t> inflate_entry(std::span<const uint8_t> compressed, uint64_t size, const std::string& context) {
  z_stream stream{};
  KEEL_CHECK(inflateInit2(&stream, -15) == Z_OK, context, ": zlib inflateInit2 failed");  // raw deflate
  struct End {
    z_stream* s;
    ~End() { inflateEnd(s); }
  } end{&stream};
  // The output grows with what inflate actually produces, never to the declared size up front:
  // a tiny entry that declares gigabytes (a zip bomb, or a lie) allocates only what it yields.
  std::vector<uint8_t> out;
  uint64_t consumed = 0;
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    if (stream.avail_in == 0 && consumed < compressed.size()) {
      const uint64_t chunk = std::min<uint64_t>(compressed.size() - consumed, 1u << 30);
      stream.next_in = const_cast<Bytef*>(compressed.data() + consumed);
      stream.avail_in = static_cast<uInt>(chunk);
      consumed += chunk;
    }
    if (stream.total_out == out.size()) {
      KEEL_CHECK(out.size() < size, context, ": inflates to more than the ", size, " bytes its header declares");
      const uint64_t grown = std::min<uint64_t>(size, std::max<uint64_t>(out.size() * 2, 1 << 16));
      out.resize(grown);
    }
    stream.next_out = out.data() + stream.total_out;
    stream.avail_out = static_cast<uInt>(std::min<uint64_t>(out.size() - stream.total_out, 1u << 30));
    const uint64_t before_in = stream.avail_in, before_out = stream.avail_out;
    status = inflate(&stream, Z_NO_FLUSH);
    KEEL_CHECK(status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR, context,
               ": corrupt deflate data (zlib: ", stream.msg ? stream.msg : "error", ")");
    if (status != Z_STREAM_END && stream.avail_in == before_in && stream.avail_out == before_out)
      KEEL_CHECK(stream.avail_out == 0 || consumed < compressed.size(), context,
                 ": the deflate data ends early (truncated entry)");
  }
  KEEL_CHECK(stream.avail_in == 0 && consumed == compressed.size(), context,
             ": bytes left after the end of the deflate data");
  KEEL_CHECK(stream.total_out == size, context, ": inflates to ", static_cast<uint64_t>(stream.total_out),
             " bytes but its header declares ", size);
  out.resize(size);
  return out;
}

}  // namespace

// ---- public ------------------------------------------------------------------------------------

Tensor parse_npy(std::span<const uint8_t> bytes, const std::string& name) {
  return parse_npy_in(bytes, "[load_npy] " + name);
}

Tensor load_npy(const std::string& path) {
  const std::string tag = "[load_npy] " + path;
  const std::vector<uint8_t> bytes = read_whole_file(path, tag);
  return parse_npy_in(bytes, tag);
}

void save_npy(const std::string& path, const Tensor& tensor) {
  const std::string tag = "[save_npy] " + path + ":";
  KEEL_CHECK(tensor.defined(), tag, " the tensor is undefined");
  const std::string header = npy_header(tensor, tag);
  const Tensor host = tensor.detach().to(Device::cpu()).contiguous();
  write_file_atomically(path, "[save_npy]", [&](const ByteSink& sink) {
    sink(header.data(), header.size());
    if (host.nbytes() > 0) sink(host.raw_data(), host.nbytes());
  });
}

void save_npz(const std::string& path, const NamedTensors& tensors) {
  const std::string tag = "[save_npz] " + path + ":";
  struct Prepared {
    std::string name, header;
    Tensor host;
    uint32_t crc;
    uint64_t size, offset;
  };
  std::vector<Prepared> entries;
  std::set<std::string> names;
  constexpr uint64_t kLimit32 = 0xFFFFFFFFu;
  uint64_t offset = 0;
  KEEL_CHECK(tensors.size() < 0xFFFF, tag, " ", tensors.size(), " tensors need a ZIP64 archive, which Keel does not "
             "write; split them over several files");
  for (const auto& [name, tensor] : tensors) {
    KEEL_CHECK(!name.empty(), tag, " a tensor has an empty name");
    KEEL_CHECK(names.insert(name).second, tag, " the name \"", name, "\" appears twice");
    KEEL_CHECK(tensor.defined(), tag, " tensor \"", name, "\" is undefined");
    Prepared entry{name + ".npy", npy_header(tensor, tag + " tensor \"" + name + "\":"),
                   tensor.detach().to(Device::cpu()).contiguous(), 0, 0, offset};
    KEEL_CHECK(entry.name.size() < 0xFFFF, tag, " the name \"", name.substr(0, 40), "...\" is too long for a zip entry");
    entry.size = entry.header.size() + entry.host.nbytes();
    entry.crc = zlib_crc32(reinterpret_cast<const uint8_t*>(entry.header.data()), entry.header.size());
    if (entry.host.nbytes() > 0)
      entry.crc = zlib_crc32(static_cast<const uint8_t*>(entry.host.raw_data()), entry.host.nbytes(), entry.crc);
    offset += 30 + entry.name.size() + entry.size;
    KEEL_CHECK(entry.size < kLimit32 && offset < kLimit32, tag, " tensor \"", name, "\" ends past 4 GiB in the "
               "archive, which needs ZIP64; Keel does not write ZIP64: use save_safetensors or save_npy for such sizes");
    entries.push_back(std::move(entry));
  }
  // The fields local and central headers share, from "version needed to extract" to the extra
  // field's length: zip 2.0, stored (no compression), the 1980 DOS date, CRC-32 and sizes. Names are
  // UTF-8: general purpose flag bit 11 says so when a name is not plain ASCII.
  auto put_entry_fields = [](std::string& out, const Prepared& entry) {
    const bool utf8 = std::any_of(entry.name.begin(), entry.name.end(),
                                  [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
    put16(out, 20);                // needed to extract: 2.0
    put16(out, utf8 ? 0x0800 : 0); // flags
    put16(out, 0);                 // stored
    put16(out, 0);                 // time 00:00
    put16(out, kDosDate1980);
    put32(out, entry.crc);
    put32(out, entry.size);        // compressed
    put32(out, entry.size);        // uncompressed
    put16(out, entry.name.size());
    put16(out, 0);                 // extra field
  };
  std::string central;
  for (const auto& entry : entries) {
    put32(central, kCentralSignature);
    put16(central, (3 << 8) | 20);  // made by: Unix, zip 2.0
    put_entry_fields(central, entry);
    put16(central, 0);  // comment
    put16(central, 0);  // disk
    put16(central, 0);  // internal attributes
    put32(central, static_cast<uint64_t>(0100644) << 16);  // a regular file, rw-r--r--
    put32(central, entry.offset);
    central += entry.name;
  }
  KEEL_CHECK(offset + central.size() < kLimit32, tag, " the archive passes 4 GiB, which needs ZIP64; Keel does not "
             "write ZIP64: use save_safetensors or save_npy for such sizes");
  std::string end;
  put32(end, kEndSignature);
  put16(end, 0);
  put16(end, 0);
  put16(end, entries.size());
  put16(end, entries.size());
  put32(end, central.size());
  put32(end, offset);
  put16(end, 0);
  write_file_atomically(path, "[save_npz]", [&](const ByteSink& sink) {
    for (const auto& entry : entries) {
      std::string local;
      put32(local, kLocalSignature);
      put_entry_fields(local, entry);
      local += entry.name;
      local += entry.header;
      sink(local.data(), local.size());
      if (entry.host.nbytes() > 0) sink(entry.host.raw_data(), entry.host.nbytes());
    }
    sink(central.data(), central.size());
    sink(end.data(), end.size());
  });
}

NamedTensors parse_npz(std::span<const uint8_t> bytes, const std::string& name) {
  const std::string tag = "[load_npz] " + name;
  const uint64_t file_size = bytes.size();
  KEEL_CHECK(file_size >= 22, tag, ": ", file_size, " bytes, too short for a zip archive (.npz)");
  // The EOCD is the last 22 bytes plus a comment of up to 65535 bytes; take the last signature
  // whose comment length reaches exactly to the end of the file.
  uint64_t end_at = file_size;
  for (uint64_t at = file_size - 22;; --at) {
    if (read_le(bytes.data() + at, 4) == kEndSignature && at + 22 + read_le(bytes.data() + at + 20, 2) == file_size) {
      end_at = at;
      break;
    }
    if (at == 0 || file_size - at >= 22 + 0xFFFF) break;
  }
  KEEL_CHECK(end_at < file_size, tag, ": no zip end-of-central-directory record (not a zip archive, or truncated)");
  Cursor end(bytes, end_at + 4, tag, "end-of-central-directory record");
  const uint64_t disk = end.take(2), directory_disk = end.take(2);
  uint64_t disk_entries = end.take(2), entries = end.take(2);
  uint64_t directory_size = end.take(4), directory_offset = end.take(4);
  KEEL_CHECK(disk == 0 && directory_disk == 0 && disk_entries == entries, tag,
             ": multi-part (split) zip archives are not supported");
  uint64_t directory_limit = end_at;  // the central directory lies before this
  if (entries == 0xFFFF || directory_size == 0xFFFFFFFF || directory_offset == 0xFFFFFFFF) {
    KEEL_CHECK(end_at >= 20, tag, ": a ZIP64 archive without its ZIP64 locator");
    Cursor locator(bytes, end_at - 20, tag, "ZIP64 locator");
    KEEL_CHECK(locator.take(4) == kZip64LocatorSignature, tag, ": a ZIP64 archive without its ZIP64 locator");
    locator.take(4);
    const uint64_t zip64_end_at = locator.take(8);
    KEEL_CHECK(zip64_end_at <= end_at - 20 && end_at - 20 - zip64_end_at >= 56, tag,
               ": the ZIP64 end record offset ", zip64_end_at, " is out of range");
    Cursor zip64(bytes, zip64_end_at, tag, "ZIP64 end-of-central-directory record");
    KEEL_CHECK(zip64.take(4) == kZip64EndSignature, tag, ": bad ZIP64 end-of-central-directory signature");
    zip64.take(8 + 2 + 2 + 4 + 4);  // record size, versions, disk numbers
    disk_entries = zip64.take(8);
    entries = zip64.take(8);
    directory_size = zip64.take(8);
    directory_offset = zip64.take(8);
    KEEL_CHECK(disk_entries == entries, tag, ": multi-part (split) zip archives are not supported");
    directory_limit = zip64_end_at;
  }
  KEEL_CHECK(directory_offset <= directory_limit && directory_size <= directory_limit - directory_offset, tag,
             ": the central directory (offset ", directory_offset, ", ", directory_size,
             " bytes) does not lie inside the file");
  KEEL_CHECK(entries <= directory_size / 46, tag, ": ", entries, " entries cannot fit in a central directory of ",
             directory_size, " bytes");

  std::vector<ZipEntry> zip_entries;
  zip_entries.reserve(entries);
  Cursor central(bytes.first(directory_offset + directory_size), directory_offset, tag, "central directory entry");
  for (uint64_t i = 0; i < entries; ++i) {
    ZipEntry entry;
    KEEL_CHECK(central.take(4) == kCentralSignature, tag, ": central directory entry ", i, " has a bad signature");
    central.take(4);  // versions
    entry.flags = static_cast<uint16_t>(central.take(2));
    entry.method = static_cast<uint16_t>(central.take(2));
    central.take(4);  // time, date
    entry.crc = static_cast<uint32_t>(central.take(4));
    entry.compressed_size = central.take(4);
    entry.size = central.take(4);
    const uint64_t name_length = central.take(2), extra_length = central.take(2), comment_length = central.take(2);
    const uint64_t entry_disk = central.take(2);
    central.take(2 + 4);  // attributes
    entry.local_offset = central.take(4);
    entry.name = std::string(central.text(name_length));
    // ZIP64 extended information (header id 1): the 64-bit values of the fields that are
    // 0xFFFFFFFF above, in this order.
    std::string_view extra = central.text(extra_length);
    central.text(comment_length);
    const std::string where = tag + ": entry \"" + entry.name + "\"";
    while (extra.size() >= 4) {
      const uint64_t id = read_le(reinterpret_cast<const uint8_t*>(extra.data()), 2);
      const uint64_t length = read_le(reinterpret_cast<const uint8_t*>(extra.data()) + 2, 2);
      KEEL_CHECK(length <= extra.size() - 4, where, ": an extra field runs past its end");
      if (id == 1) {
        Cursor field(std::span(reinterpret_cast<const uint8_t*>(extra.data()) + 4, length), 0, where, "ZIP64 field");
        if (entry.size == 0xFFFFFFFF) entry.size = field.take(8);
        if (entry.compressed_size == 0xFFFFFFFF) entry.compressed_size = field.take(8);
        if (entry.local_offset == 0xFFFFFFFF) entry.local_offset = field.take(8);
      }
      extra.remove_prefix(4 + length);
    }
    KEEL_CHECK(entry_disk == 0 || entry_disk == 0xFFFF, where, ": multi-part (split) zip archives are not supported");
    KEEL_CHECK((entry.flags & 1) == 0, where, ": encrypted zip entries are not supported");
    KEEL_CHECK(entry.method == 0 || entry.method == 8, where, ": compression method ", entry.method,
               " is not supported (stored and deflate are, as numpy writes them)");
    KEEL_CHECK(entry.name.size() > 4 && entry.name.ends_with(".npy"), where,
               ": not an .npy entry (an .npz holds only <name>.npy files)");

    // The local header: its name and method must agree; the data follows its extra field.
    Cursor local(bytes.first(directory_offset), entry.local_offset, where, "local file header");
    KEEL_CHECK(local.take(4) == kLocalSignature, where, ": bad local header signature at byte ", entry.local_offset);
    local.take(2);
    const uint64_t local_flags = local.take(2);
    KEEL_CHECK(local.take(2) == entry.method, where, ": local and central headers disagree on the method");
    local.take(4);
    const uint64_t local_crc = local.take(4), local_compressed = local.take(4), local_size = local.take(4);
    const uint64_t local_name_length = local.take(2), local_extra_length = local.take(2);
    KEEL_CHECK(local.text(local_name_length) == entry.name, where, ": local and central headers disagree on the name");
    local.text(local_extra_length);
    // Without a data descriptor (flag bit 3) the local header repeats the CRC and sizes
    // (0xFFFFFFFF when they live in a ZIP64 extra field, as numpy.savez always writes them).
    if ((local_flags & 8) == 0) {
      KEEL_CHECK(local_crc == entry.crc, where, ": local and central headers disagree on the CRC");
      KEEL_CHECK((local_compressed == 0xFFFFFFFF || local_compressed == entry.compressed_size) &&
                     (local_size == 0xFFFFFFFF || local_size == entry.size),
                 where, ": local and central headers disagree on the sizes");
    }
    entry.data_offset = local.at();
    KEEL_CHECK(entry.compressed_size <= directory_offset - entry.data_offset, where, ": its ",
               entry.compressed_size, " bytes of data run into the central directory or past the end of the file");
    if (entry.method == 0)
      KEEL_CHECK(entry.compressed_size == entry.size, where, ": a stored entry whose sizes differ (",
                 entry.compressed_size, " and ", entry.size, ")");
    zip_entries.push_back(std::move(entry));
  }
  // Entries may not share bytes: an archive whose entries overlap is malformed or an attack.
  std::vector<const ZipEntry*> by_offset;
  for (const auto& entry : zip_entries) by_offset.push_back(&entry);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const ZipEntry* a, const ZipEntry* b) { return a->local_offset < b->local_offset; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    KEEL_CHECK(by_offset[i]->local_offset >= by_offset[i - 1]->data_offset + by_offset[i - 1]->compressed_size, tag,
               ": entries \"", by_offset[i - 1]->name, "\" and \"", by_offset[i]->name, "\" overlap");

  NamedTensors tensors;
  std::set<std::string> names;
  for (const auto& entry : zip_entries) {
    const std::string where = tag + ": entry \"" + entry.name + "\"";
    const std::string key = entry.name.substr(0, entry.name.size() - 4);
    KEEL_CHECK(names.insert(key).second, where, ": appears twice");
    const auto stored = bytes.subspan(entry.data_offset, entry.compressed_size);
    std::vector<uint8_t> inflated;
    std::span<const uint8_t> data = stored;
    if (entry.method == 8) {
      inflated = inflate_entry(stored, entry.size, where);
      data = inflated;
    }
    const uint32_t crc = zlib_crc32(data.data(), data.size());
    KEEL_CHECK(crc == entry.crc, where, ": CRC-32 mismatch (the data is corrupt)");
    tensors.emplace_back(key, parse_npy_in(data, where));
  }
  return tensors;
}

NamedTensors load_npz(const std::string& path) {
  const std::vector<uint8_t> bytes = read_whole_file(path, "[load_npz] " + path);
  return parse_npz(bytes, path);
}

}  // namespace keel::io
