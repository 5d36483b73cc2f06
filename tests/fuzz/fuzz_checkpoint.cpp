// libFuzzer target: io::parse_checkpoint_metadata on arbitrary text, the checks load_checkpoint
// runs on a training checkpoint's JSON metadata before it compares anything with the model
// (the tensors around it are parse_safetensors', fuzzed by fuzz_safetensors). Any input must either
// parse or throw keel::Error. Needs only core/ and io/ (io/checkpoint_metadata.cpp).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "keel/core/error.h"
#include "keel/io/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const keel::io::CheckpointMetadata m =
        keel::io::parse_checkpoint_metadata(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    // What it accepted is within the documented ranges.
    if (m.version != keel::io::kCheckpointVersion || m.step < 0 || m.epoch < 0 || m.batch_in_epoch < 0 ||
        (m.has_loader && m.batch_in_epoch > m.loader_batches))
      __builtin_trap();
  } catch (const keel::Error&) {
  }
  return 0;
}
