#pragma once
// A writer for the Protocol Buffers wire format, enough to write ONNX models (onnx.proto) and
// TensorBoard events (event.proto, summary.proto) without libprotobuf.
//
// A message is a sequence of fields; each field is a key, varint(field_number << 3 | wire_type),
// followed by its value (https://protobuf.dev/programming-guides/encoding/):
//   wire type 0  varint        int32 int64 uint64 bool enum (negative ints: 10 bytes, two's complement)
//   wire type 1  64-bit        double fixed64 (little-endian)
//   wire type 2  length-delim. varint(length) then bytes: string, bytes, nested message, packed repeated
//   wire type 5  32-bit        float fixed32 (little-endian)
// A varint stores 7 bits per byte, least significant group first, with the high bit set on every
// byte but the last: 150 -> 0x96 0x01.
//
// Fields are written in the order the caller writes them; readers accept any order. A nested
// message is built in its own Writer and then appended with message(), which copies its bytes:
// nesting is shallow in the formats above, and messages stay under protobuf's 2 GB limit
// (ONNX moves big tensors to external data for that reason).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace keel::io::protobuf {

enum class WireType : uint8_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

class Writer {
 public:
  // Scalars.
  void uint64(uint32_t field, uint64_t value);
  void int64(uint32_t field, int64_t value) { uint64(field, static_cast<uint64_t>(value)); }
  void boolean(uint32_t field, bool value) { uint64(field, value ? 1 : 0); }
  void float32(uint32_t field, float value);
  void float64(uint32_t field, double value);
  // Length-delimited: strings and bytes, nested messages.
  void bytes(uint32_t field, const void* data, size_t size);
  void string(uint32_t field, std::string_view text) { bytes(field, text.data(), text.size()); }
  void message(uint32_t field, const Writer& nested) { bytes(field, nested.data(), nested.size()); }
  // Packed repeated scalars (one length-delimited field holding all values; proto3's default).
  void packed_int64(uint32_t field, std::span<const int64_t> values);
  void packed_float32(uint32_t field, std::span<const float> values);
  void packed_float64(uint32_t field, std::span<const double> values);

  const char* data() const { return buffer_.data(); }
  size_t size() const { return buffer_.size(); }
  const std::string& str() const { return buffer_; }
  std::string take() { return std::move(buffer_); }

  // The low-level pieces, for formats that frame messages themselves.
  void key(uint32_t field, WireType type);
  void raw_varint(uint64_t value);
  void raw_bytes(const void* data, size_t size) { buffer_.append(static_cast<const char*>(data), size); }

 private:
  std::string buffer_;
};

// The number of bytes varint(value) takes (1 to 10).
size_t varint_size(uint64_t value);

}  // namespace keel::io::protobuf
