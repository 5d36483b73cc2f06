#pragma once
// SHA-256 (FIPS 180-4), to fingerprint the data an experiment used.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace keel::data {

class Sha256 {
 public:
  Sha256();
  Sha256& update(const void* data, size_t size);
  Sha256& update(std::string_view text) { return update(text.data(), text.size()); }
  std::array<uint8_t, 32> digest();  // finishes the hash; call once
  std::string hex_digest();          // 64 lowercase hex digits

 private:
  void block(const uint8_t* chunk);
  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t length_ = 0;  // bytes hashed
  bool finished_ = false;
};

std::string sha256_hex(const void* data, size_t size);
inline std::string sha256_hex(std::string_view text) { return sha256_hex(text.data(), text.size()); }

}  // namespace keel::data
