#pragma once
// Helpers that write the layers' extra_repr() the way PyTorch prints its arguments.
#include <array>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace keel::nn::repr {

inline std::string boolean(bool value) { return value ? "True" : "False"; }
inline std::string pair(const std::array<int64_t, 2>& values) {
  std::ostringstream out;  // (not "(" + to_string(...): GCC 12 warns falsely on it, -Wrestrict)
  out << "(" << values[0] << ", " << values[1] << ")";
  return out.str();
}
inline std::string tuple(const std::vector<int64_t>& values) {
  std::string out = "(";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out + (values.size() == 1 ? ",)" : ")");
}
inline std::string number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

}  // namespace keel::nn::repr
