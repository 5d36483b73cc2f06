// libFuzzer target: io::parse_npy (the parser behind load_npy) on arbitrary bytes. A malformed
// file must give keel::Error; anything else (a crash, a sanitizer report, another exception)
// is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "keel/core/error.h"
#include "keel/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const keel::Tensor tensor = keel::io::parse_npy(std::span<const uint8_t>(data, size), "fuzz.npy");
    (void)tensor.numel();
  } catch (const keel::Error&) {
  }
  return 0;
}
