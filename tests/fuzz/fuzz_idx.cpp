// libFuzzer target: data::parse_idx on arbitrary bytes, plain or gzip (1f 8b) through zlib, with
// the default limits. Any input must either load or throw keel::Error; memory must follow the
// data really present (the fuzzer's -rss_limit_mb / malloc limit catch a header-sized allocation).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "keel/core/error.h"
#include "keel/io/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    keel::data::parse_idx(std::vector<uint8_t>(data, data + size), "fuzz");
  } catch (const keel::Error&) {
  }
  return 0;
}
