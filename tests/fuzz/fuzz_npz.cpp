// libFuzzer target: io::parse_npz (the zip reader behind load_npz, and parse_npy for each
// entry) on arbitrary bytes. A malformed archive must give keel::Error; anything else (a crash,
// a sanitizer report, another exception, a huge allocation) is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "keel/core/error.h"
#include "keel/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const keel::io::NamedTensors tensors = keel::io::parse_npz(std::span<const uint8_t>(data, size), "fuzz.npz");
    (void)tensors.size();
  } catch (const keel::Error&) {
  }
  return 0;
}
