#include "keel/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <string_view>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/core/error.h"
#include "keel/io/atomic_file.h"
#include "keel/io/json.h"

namespace keel::io {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the limit Python's safetensors also sets

struct DTypeCode {
  DType dtype;
  const char* code;
};
constexpr DTypeCode kDTypeCodes[] = {{DType::f64, "F64"}, {DType::f32, "F32"}, {DType::f16, "F16"},
                                     {DType::bf16, "BF16"}, {DType::i64, "I64"}, {DType::i32, "I32"},
                                     {DType::i8, "I8"},    {DType::u8, "U8"},   {DType::bool_, "BOOL"}};

const char* code_of(DType dtype) {
  for (const auto& entry : kDTypeCodes)
    if (entry.dtype == dtype) return entry.code;
  fail("[save_safetensors] no safetensors code for dtype ", dtype_name(dtype));
}

// The order of the tensors' bytes in the data section: largest element size first, otherwise
// the caller's order. The data section starts 8-byte aligned, so every tensor then starts at a
// multiple of its element size and memory-mapped readers (Keel's, Python's) can use it in place.
std::vector<size_t> data_order(const NamedTensors& tensors) {
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].second.dtype()) > dtype_size(tensors[b].second.dtype());
  });
  return order;
}

std::string header_json(const NamedTensors& tensors, const std::vector<size_t>& order,
                        const std::map<std::string, std::string>& metadata) {
  std::vector<uint64_t> begin(tensors.size());
  uint64_t offset = 0;
  for (size_t i : order) {
    begin[i] = offset;
    offset += tensors[i].second.nbytes();
  }
  std::string json = "{";
  if (!metadata.empty()) {
    json += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (!first) json += ",";
      first = false;
      json += json_quote(key) + ":" + json_quote(value);
    }
    json += "}";
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, tensor] = tensors[i];
    if (json.size() > 1) json += ",";
    json += json_quote(name) + ":{\"dtype\":\"" + code_of(tensor.dtype()) + "\",\"shape\":[";
    for (size_t d = 0; d < tensor.shape().size(); ++d) {
      if (d > 0) json += ',';
      json += std::to_string(tensor.shape()[d]);
    }
    json += "],\"data_offsets\":[" + std::to_string(begin[i]) + "," + std::to_string(begin[i] + tensor.nbytes()) + "]}";
  }
  json += "}";
  // The data starts on an 8-byte boundary (as Python's safetensors writes it): pad with spaces.
  json.append((8 - json.size() % 8) % 8, ' ');
  return json;
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string tag = "[save_safetensors] " + path + ":";
  std::set<std::string> names;
  NamedTensors host;  // contiguous CPU copies, checked before anything is written
  host.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    KEEL_CHECK(!name.empty(), tag, " a tensor has an empty name");
    KEEL_CHECK(name != "__metadata__", tag, " \"__metadata__\" is reserved and cannot name a tensor");
    KEEL_CHECK(names.insert(name).second, tag, " the name \"", name, "\" appears twice");
    KEEL_CHECK(tensor.defined(), tag, " tensor \"", name, "\" is undefined");
    code_of(tensor.dtype());
    host.emplace_back(name, tensor.detach().to(Device::cpu()).contiguous());
  }
  const std::vector<size_t> order = data_order(host);
  const std::string header = header_json(host, order, metadata);
  write_file_atomically(path, "[save_safetensors]", [&](const ByteSink& sink) {
    uint8_t length[8];
    const uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(n >> (8 * i));
    sink(length, 8);
    sink(header.data(), header.size());
    for (size_t i : order)
      if (host[i].second.nbytes() > 0) sink(host[i].second.raw_data(), host[i].second.nbytes());
  });
}

namespace {

// What the header says about one tensor, checked against the data section.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;  // relative to the start of the data section
  size_t header_index;  // its place among the header's entries
};

// The checked header of a file: tensors in the header's order (their byte ranges, sorted, tile the
// data exactly).
struct Layout {
  uint64_t data_start = 0;  // 8 + header length
  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
};

uint64_t header_length(const std::byte* first8) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(std::to_integer<uint8_t>(first8[i])) << (8 * i);
  return n;
}

// Checks the 8-byte length against the file size; returns the header length.
uint64_t check_header_length(std::span<const std::byte> first8, uint64_t file_size, const std::string& tag) {
  KEEL_CHECK(file_size >= 8 && first8.size() >= 8, tag, ": ", file_size, " bytes, shorter than the 8-byte header length");
  const uint64_t header_size = header_length(first8.data());
  KEEL_CHECK(header_size <= kMaxHeaderBytes, tag, ": header length ", header_size, " exceeds the limit of ",
             kMaxHeaderBytes, " bytes");
  KEEL_CHECK(header_size <= file_size - 8, tag, ": header length ", header_size, " runs past the end of the file (",
             file_size, " bytes)");
  return header_size;
}

// Every check on the header, shared by all readers, before any tensor is made.
Layout parse_layout(std::string_view header, uint64_t file_size, const std::string& tag) {
  Layout layout;
  layout.data_start = 8 + header.size();
  const JsonValue root = parse_json(header, tag);
  KEEL_CHECK(root.kind == JsonValue::Kind::object, tag, ": the header is not a JSON object");
  const uint64_t data_size = file_size - layout.data_start;
  std::vector<Entry>& entries = layout.entries;
  for (const auto& [name, value] : root.object) {
    if (name == "__metadata__") {
      KEEL_CHECK(value.kind == JsonValue::Kind::object, tag, ": __metadata__ is not an object");
      for (const auto& [key, text] : value.object) {
        KEEL_CHECK(text.kind == JsonValue::Kind::string, tag, ": __metadata__ value of \"", key, "\" is not a string");
        layout.metadata[key] = text.string;
      }
      continue;
    }
    const std::string where = tag + ": tensor \"" + name + "\"";
    KEEL_CHECK(value.kind == JsonValue::Kind::object, where, " is not described by an object");
    const JsonValue* dtype = value.find("dtype");
    const JsonValue* shape = value.find("shape");
    const JsonValue* offsets = value.find("data_offsets");
    KEEL_CHECK(dtype && dtype->kind == JsonValue::Kind::string, where, " has no dtype string");
    KEEL_CHECK(shape && shape->kind == JsonValue::Kind::array, where, " has no shape array");
    KEEL_CHECK(offsets && offsets->kind == JsonValue::Kind::array && offsets->array.size() == 2, where,
               " has no data_offsets pair");
    Entry entry{name, DType::f32, {}, 0, 0, 0};
    bool known = false;
    for (const auto& code : kDTypeCodes)
      if (dtype->string == code.code) {
        entry.dtype = code.dtype;
        known = true;
      }
    KEEL_CHECK(known, where, " has dtype ", dtype->string, ", which Keel does not support (F64 F32 F16 BF16 I64 I32 I8 U8 BOOL)");
    KEEL_CHECK(shape->array.size() <= 64, where, " has ", shape->array.size(), " dimensions (at most 64)");
    // Bytes the shape needs, without overflow: each dim and the running product stay <= data_size
    // (an empty tensor may have large dims; its product is 0).
    uint64_t bytes = dtype_size(entry.dtype);
    bool empty = false;
    for (const JsonValue& dim : shape->array) {
      KEEL_CHECK(dim.kind == JsonValue::Kind::number && dim.is_integer && dim.integer >= 0, where,
                 " has a shape entry that is not a non-negative integer");
      entry.shape.push_back(dim.integer);
      if (dim.integer == 0) empty = true;
    }
    if (empty) {
      bytes = 0;
    } else {
      for (const int64_t dim : entry.shape) {
        KEEL_CHECK(static_cast<uint64_t>(dim) <= data_size && bytes <= data_size / static_cast<uint64_t>(dim), where,
                   " has shape ", entry.shape, ", larger than the file's ", data_size, " data bytes");
        bytes *= static_cast<uint64_t>(dim);
      }
    }
    for (const JsonValue& offset : offsets->array)
      KEEL_CHECK(offset.kind == JsonValue::Kind::number && offset.is_integer && offset.integer >= 0, where,
                 " has a data offset that is not a non-negative integer");
    entry.begin = static_cast<uint64_t>(offsets->array[0].integer);
    entry.end = static_cast<uint64_t>(offsets->array[1].integer);
    KEEL_CHECK(entry.begin <= entry.end && entry.end <= data_size, where, " has data_offsets [", entry.begin, ", ",
               entry.end, "] outside the ", data_size, " data bytes");
    KEEL_CHECK(entry.end - entry.begin == bytes, where, " has shape ", entry.shape, " and dtype ", dtype->string,
               " (", bytes, " bytes) but data_offsets [", entry.begin, ", ", entry.end, "]");
    entry.header_index = entries.size();
    entries.push_back(std::move(entry));
  }
  // The tensors' byte ranges, in order, must tile the data exactly (no overlap, no hole).
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (const Entry& entry : entries) {
    KEEL_CHECK(entry.begin == covered, tag, ": tensor \"", entry.name, "\" starts at data byte ", entry.begin,
               " where ", covered, " was expected (overlapping or missing data)");
    covered = entry.end;
  }
  KEEL_CHECK(covered == data_size, tag, ": the tensors cover ", covered, " of the ", data_size, " data bytes");
  // Back to the header's order: a file Keel wrote loads in the order it was saved.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.header_index < b.header_index; });
  return layout;
}

// A bool tensor's bytes must be 0 or 1: any other byte read as a C++ bool is undefined behaviour.
void check_bool_bytes(const Entry& entry, const std::byte* data, const std::string& tag) {
  if (entry.dtype != DType::bool_) return;
  for (uint64_t i = 0; i < entry.end - entry.begin; ++i)
    KEEL_CHECK(std::to_integer<uint8_t>(data[i]) <= 1, tag, ": tensor \"", entry.name, "\" (BOOL) has byte ",
               std::to_integer<int>(data[i]), " at element ", i, " (only 0 and 1 are booleans)");
}

// Tensors copied out of the whole file's bytes (in memory or mapped), after parse_layout.
SafetensorsContents copy_tensors(Layout layout, std::span<const std::byte> bytes, const std::string& tag) {
  SafetensorsContents contents;
  contents.metadata = std::move(layout.metadata);
  for (Entry& entry : layout.entries) {
    const std::byte* source = bytes.data() + layout.data_start + entry.begin;
    check_bool_bytes(entry, source, tag);
    Tensor tensor = empty(entry.shape, {.dtype = entry.dtype});
    if (entry.end > entry.begin) std::memcpy(tensor.raw_data(), source, entry.end - entry.begin);
    contents.tensors.emplace_back(std::move(entry.name), std::move(tensor));
  }
  return contents;
}

// A read-only-to-the-file private mapping; unmapped when the last tensor viewing it goes away.
struct Mapping {
  void* address = nullptr;
  size_t size = 0;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  Mapping(void* a, size_t s) : address(a), size(s) {}
  ~Mapping() { ::munmap(address, size); }
};

}  // namespace

SafetensorsContents parse_safetensors(std::span<const std::byte> bytes, const std::string& name) {
  const std::string tag = "[load_safetensors] " + name;
  const uint64_t header_size = check_header_length(bytes, bytes.size(), tag);
  const std::string_view header(reinterpret_cast<const char*>(bytes.data()) + 8, header_size);
  return copy_tensors(parse_layout(header, bytes.size(), tag), bytes, tag);
}

namespace {

SafetensorsContents read_copying(const std::string& path, const std::string& tag) {
  std::ifstream file(path, std::ios::binary);
  KEEL_CHECK(file.is_open(), tag, ": cannot open the file (", std::strerror(errno), ")");
  file.seekg(0, std::ios::end);
  const auto end_position = file.tellg();
  KEEL_CHECK(end_position >= 0, tag, ": cannot read the file size");
  const uint64_t file_size = static_cast<uint64_t>(end_position);
  file.seekg(0);
  std::byte length_bytes[8] = {};
  if (file_size >= 8) file.read(reinterpret_cast<char*>(length_bytes), 8);
  const uint64_t header_size = check_header_length(length_bytes, file_size, tag);
  std::string header(header_size, '\0');
  file.read(header.data(), static_cast<std::streamsize>(header_size));
  KEEL_CHECK(file.good(), tag, ": reading the header failed");
  Layout layout = parse_layout(header, file_size, tag);
  SafetensorsContents contents;
  contents.metadata = std::move(layout.metadata);
  for (Entry& entry : layout.entries) {
    Tensor tensor = empty(entry.shape, {.dtype = entry.dtype});
    if (entry.end > entry.begin) {
      file.seekg(static_cast<std::streamoff>(layout.data_start + entry.begin));
      file.read(static_cast<char*>(tensor.raw_data()), static_cast<std::streamsize>(entry.end - entry.begin));
      KEEL_CHECK(file.good(), tag, ": reading the data of \"", entry.name, "\" failed");
      check_bool_bytes(entry, static_cast<const std::byte*>(tensor.raw_data()), tag);
    }
    contents.tensors.emplace_back(std::move(entry.name), std::move(tensor));
  }
  return contents;
}

SafetensorsContents read_mapped(const std::string& path, const std::string& tag) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  KEEL_CHECK(fd >= 0, tag, ": cannot open the file (", std::strerror(errno), ")");
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    fail(tag, ": cannot read the file size (", std::strerror(error), ")");
  }
  const uint64_t file_size = static_cast<uint64_t>(info.st_size);
  if (file_size < 8) {
    ::close(fd);
    check_header_length({}, file_size, tag);  // throws: too short
  }
  // MAP_PRIVATE with PROT_WRITE: a write to a loaded tensor makes a private copy of its page and
  // never reaches the file (nor faults, as a PROT_READ mapping would).
  void* address = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int map_error = errno;
  ::close(fd);  // the mapping keeps the file referenced
  KEEL_CHECK(address != MAP_FAILED, tag, ": mmap failed (", std::strerror(map_error), ")");
  auto mapping = std::make_shared<Mapping>(address, file_size);
  const std::span<const std::byte> bytes(static_cast<const std::byte*>(address), file_size);
  const uint64_t header_size = check_header_length(bytes, file_size, tag);
  const std::string_view header(reinterpret_cast<const char*>(bytes.data()) + 8, header_size);
  Layout layout = parse_layout(header, file_size, tag);
  SafetensorsContents contents;
  contents.metadata = std::move(layout.metadata);
  for (Entry& entry : layout.entries) {
    const uint64_t offset = layout.data_start + entry.begin;
    std::byte* data = static_cast<std::byte*>(address) + offset;
    check_bool_bytes(entry, data, tag);
    Tensor tensor;
    if (entry.end == entry.begin || offset % dtype_size(entry.dtype) != 0) {
      // Empty tensors get their own (empty) storage; misaligned data is copied.
      tensor = empty(entry.shape, {.dtype = entry.dtype});
      if (entry.end > entry.begin) std::memcpy(tensor.raw_data(), data, entry.end - entry.begin);
    } else {
      tensor = from_blob(data, entry.shape, {.dtype = entry.dtype}, [mapping](void*) {});
    }
    contents.tensors.emplace_back(std::move(entry.name), std::move(tensor));
  }
  return contents;
}

}  // namespace

SafetensorsContents read_safetensors(const std::string& path, const SafetensorsReadOptions& options) {
  const std::string tag = "[load_safetensors] " + path;
  return options.mmap ? read_mapped(path, tag) : read_copying(path, tag);
}

}  // namespace keel::io
