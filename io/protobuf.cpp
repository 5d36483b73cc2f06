#include "keel/io/protobuf.h"

#include <bit>
#include <cstring>

#include "keel/core/error.h"

namespace keel::io::protobuf {

static_assert(std::endian::native == std::endian::little, "the wire format's fixed-size values are little-endian");

size_t varint_size(uint64_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

void Writer::raw_varint(uint64_t value) {
  while (value >= 0x80) {
    buffer_.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  buffer_.push_back(static_cast<char>(value));
}

void Writer::key(uint32_t field, WireType type) {
  // Field numbers are 1 .. 2^29 - 1 (19000-19999 are reserved but legal on the wire).
  KEEL_CHECK(field >= 1 && field < (1u << 29), "[protobuf] field number out of range: ", field);
  raw_varint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(type));
}

void Writer::uint64(uint32_t field, uint64_t value) {
  key(field, WireType::varint);
  raw_varint(value);
}

void Writer::float32(uint32_t field, float value) {
  key(field, WireType::fixed32);
  raw_bytes(&value, sizeof value);
}

void Writer::float64(uint32_t field, double value) {
  key(field, WireType::fixed64);
  raw_bytes(&value, sizeof value);
}

void Writer::bytes(uint32_t field, const void* data, size_t size) {
  key(field, WireType::length_delimited);
  raw_varint(size);
  raw_bytes(data, size);
}

void Writer::packed_int64(uint32_t field, std::span<const int64_t> values) {
  size_t length = 0;
  for (int64_t value : values) length += varint_size(static_cast<uint64_t>(value));
  key(field, WireType::length_delimited);
  raw_varint(length);
  for (int64_t value : values) raw_varint(static_cast<uint64_t>(value));
}

void Writer::packed_float32(uint32_t field, std::span<const float> values) {
  bytes(field, values.data(), values.size_bytes());
}

void Writer::packed_float64(uint32_t field, std::span<const double> values) {
  bytes(field, values.data(), values.size_bytes());
}

}  // namespace keel::io::protobuf
