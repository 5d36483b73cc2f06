// CRC-32C against the published check value and the iSCSI test vectors (RFC 3720, B.4).
#include <string>
#include <vector>

#include "keel/io/crc32c.h"
#include "test_util.h"

using keel::io::crc32c;

namespace {
// The textbook bit-at-a-time definition, the oracle for the table-driven code.
uint32_t crc32c_bitwise(const std::vector<uint8_t>& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (uint8_t byte : data) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
  }
  return ~crc;
}
}  // namespace

TEST_CASE("crc32c: the standard check value and RFC 3720 vectors") {
  const std::string check = "123456789";
  CHECK(crc32c(check.data(), check.size()) == 0xE3069283u);
  CHECK(crc32c(nullptr, 0) == 0u);

  std::vector<uint8_t> zeros(32, 0x00), ones(32, 0xFF), ascending(32), descending(32);
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<uint8_t>(i);
    descending[i] = static_cast<uint8_t>(31 - i);
  }
  CHECK(crc32c(zeros.data(), 32) == 0x8A9136AAu);
  CHECK(crc32c(ones.data(), 32) == 0x62A8AB43u);
  CHECK(crc32c(ascending.data(), 32) == 0x46DD794Eu);
  CHECK(crc32c(descending.data(), 32) == 0x113FDB5Cu);
  // An iSCSI SCSI Read (10) command PDU.
  const std::vector<uint8_t> read_pdu = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
      0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  CHECK(crc32c(read_pdu.data(), read_pdu.size()) == 0xD9963A56u);
}

TEST_CASE("crc32c: every length and split point agrees with the bitwise definition") {
  std::vector<uint8_t> data(70);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 37 + 11);
  for (size_t length = 0; length <= data.size(); ++length) {
    const std::vector<uint8_t> prefix(data.begin(), data.begin() + static_cast<ptrdiff_t>(length));
    const uint32_t expected = crc32c_bitwise(prefix);
    REQUIRE(crc32c(data.data(), length) == expected);
    for (size_t split = 0; split <= length; split += 3)
      REQUIRE(crc32c(data.data() + split, length - split, crc32c(data.data(), split)) == expected);
  }
}

TEST_CASE("crc32c: TFRecord's mask") {
  // mask(crc) = rotate_right(crc, 15) + 0xa282ead8 (mod 2^32)
  const uint32_t crc = 0xE3069283u;
  const uint32_t rotated = (crc >> 15) | (crc << 17);
  CHECK(keel::io::mask_crc32c(crc) == static_cast<uint32_t>(rotated + 0xa282ead8u));
  CHECK(keel::io::mask_crc32c(0) == 0xa282ead8u);
}
