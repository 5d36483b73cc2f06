#pragma once
// CRC-32C (Castagnoli): the checksum of TFRecord framing (TensorBoard event files), iSCSI
// (RFC 3720) and ext4. Reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF;
// crc32c("123456789") = 0xE3069283. Not zlib's CRC-32 (polynomial 0xEDB88320), which zip
// files use.
#include <cstddef>
#include <cstdint>

namespace keel::io {

// CRC-32C of `size` bytes. `crc` continues a previous result: crc32c(b, crc32c(a)) is the
// CRC of a followed by b.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

// TFRecord's masked CRC: a rotation plus a constant, so that a CRC stored inside data that is
// itself checksummed does not produce trivial CRCs-of-CRCs
// (tensorflow/core/lib/hash/crc32c.h, Mask).
inline uint32_t mask_crc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

}  // namespace keel::io
