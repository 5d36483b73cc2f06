// libFuzzer target: io::parse_json on arbitrary text (bounded depth, strings, numbers, escapes).
// Any input must either parse or throw keel::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "keel/core/error.h"
#include "keel/io/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const keel::io::JsonValue value =
        keel::io::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "[fuzz]");
    // What the parser accepted must survive a quote round trip of its strings.
    if (value.kind == keel::io::JsonValue::Kind::string) {
      const keel::io::JsonValue again = keel::io::parse_json(keel::io::json_quote(value.string), "[fuzz]");
      if (again.string != value.string) __builtin_trap();
    }
  } catch (const keel::Error&) {
  }
  return 0;
}
