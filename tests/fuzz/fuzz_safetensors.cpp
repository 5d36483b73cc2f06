// libFuzzer target: io::parse_safetensors on arbitrary bytes. Any input must either load or throw
// keel::Error; a crash, leak, sanitizer report or hang is a bug in the loader.
#include <cstddef>
#include <cstdint>
#include <span>

#include "keel/core/error.h"
#include "keel/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    keel::io::parse_safetensors(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size), "fuzz");
  } catch (const keel::Error&) {
  }
  return 0;
}
