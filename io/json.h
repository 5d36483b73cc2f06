#pragma once
// A small JSON reader for the headers of files Keel loads (safetensors): objects, arrays, strings,
// numbers, true / false / null. It bounds what it accepts (text length, nesting depth, integer
// range) because the text comes from outside files; errors throw keel::Error starting with the
// caller's tag (e.g. "[load_safetensors] file.safetensors: ...") and the byte offset.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace keel::io {

struct JsonValue {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool boolean = false;
  double number = 0;
  bool is_integer = false;  // written without fraction or exponent, and within int64
  int64_t integer = 0;
  std::string string;
  std::vector<JsonValue> array;
  std::vector<std::pair<std::string, JsonValue>> object;  // in file order; keys are unique

  const JsonValue* find(std::string_view key) const;  // null when absent (objects only)

  // Defined in json.cpp, where JsonValue is complete: clang 14 with libstdc++ 12 in C++20 rejects
  // the implicit ones (vector<pair<string, JsonValue>> of a still-incomplete type).
  JsonValue();
  JsonValue(const JsonValue&);
  JsonValue(JsonValue&&) noexcept;
  JsonValue& operator=(const JsonValue&);
  JsonValue& operator=(JsonValue&&) noexcept;
  ~JsonValue();
};

// Parses `text` whole (trailing spaces allowed, nothing else after the value). `tag` starts every
// error message.
JsonValue parse_json(std::string_view text, const std::string& tag, int max_depth = 64);

// `text` as a JSON string literal, quotes included (escapes ", \ and control characters).
std::string json_quote(std::string_view text);

}  // namespace keel::io
