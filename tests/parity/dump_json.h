#pragma once
// JSON helpers shared by the parity dumps (parity_dump.cpp, grad_parity_dump.cpp): strings,
// numbers (NaN / Infinity as Python's json reads them), shapes, scalars and the "args" objects.
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include <keel/keel.h>

namespace keel::parity {

inline std::string json_string(const std::string& text) {
  std::ostringstream out;
  out << '"';
  for (char c : text) {
    if (c == '"' || c == '\\') out << '\\' << c;
    else if (static_cast<unsigned char>(c) < 0x20) out << "\\u" << std::hex << std::setw(4) << std::setfill('0') << int(c) << std::dec;
    else out << c;
  }
  out << '"';
  return out.str();
}

inline std::string json_number(double value) {
  if (std::isnan(value)) return "NaN";  // Python's json reads NaN / Infinity
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  std::ostringstream out;
  out << std::setprecision(17) << value;
  return out.str();
}

inline std::string json_list(const std::vector<int64_t>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out + "]";
}

// {"kind": "int"|"float"|"bool", "value": v}: the script turns it into a Python number, so
// that PyTorch applies its scalar promotion rules exactly as Keel's Scalar should.
inline std::string json_scalar(const Scalar& s) {
  if (s.is_bool()) return std::string(R"({"kind": "bool", "value": )") + (s.to<bool>() ? "true" : "false") + "}";
  if (s.is_integral()) return R"({"kind": "int", "value": )" + std::to_string(s.to_int64()) + "}";
  return R"({"kind": "float", "value": )" + json_number(s.to_double()) + "}";
}

// Builds a JSON object from key / raw-JSON-value pairs.
class Args {
 public:
  Args& set(const std::string& key, const std::string& raw) {
    body_ += (body_.empty() ? "" : ", ") + json_string(key) + ": " + raw;
    return *this;
  }
  Args& set(const std::string& key, const char* text) { return set(key, json_string(text)); }
  Args& set(const std::string& key, int64_t value) { return set(key, std::to_string(value)); }
  Args& set(const std::string& key, int value) { return set(key, std::to_string(value)); }
  Args& set(const std::string& key, bool value) { return set(key, std::string(value ? "true" : "false")); }
  Args& set(const std::string& key, double value) { return set(key, json_number(value)); }
  Args& set(const std::string& key, const Scalar& value) { return set(key, json_scalar(value)); }
  Args& set(const std::string& key, const std::vector<int64_t>& value) { return set(key, json_list(value)); }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

}  // namespace keel::parity
