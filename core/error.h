#pragma once
// keel::Error: every error a user can cause. Messages start with "[op]" and name the shapes
// or values that were wrong, e.g. "[add] shapes [2, 3] and [4, 5] do not broadcast".
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
inline void append_to(std::ostringstream&) {}
template <typename First, typename... Rest>
void append_to(std::ostringstream& stream, const First& first, const Rest&... rest);
std::string shape_string(const std::vector<int64_t>& shape);
inline void append_one(std::ostringstream& stream, const std::vector<int64_t>& shape) {
  stream << shape_string(shape);
}
template <typename T> void append_one(std::ostringstream& stream, const T& value) { stream << value; }
template <typename First, typename... Rest>
void append_to(std::ostringstream& stream, const First& first, const Rest&... rest) {
  append_one(stream, first);
  append_to(stream, rest...);
}
}  // namespace detail

// Builds a message from its parts; a std::vector<int64_t> prints as a shape "[2, 3]".
template <typename... Parts> [[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream stream;
  detail::append_to(stream, parts...);
  throw Error(stream.str());
}

}  // namespace keel

// KEEL_CHECK(cond, "[op] message parts", ...): throws keel::Error when cond is false.
#define KEEL_CHECK(condition, ...)         \
  do {                                     \
    if (!(condition)) ::keel::fail(__VA_ARGS__); \
  } while (0)

// Internal invariants of kernels (not user input): also throws, with the location.
#define KEEL_ASSERT(condition)                                                           \
  do {                                                                                   \
    if (!(condition))                                                                    \
      ::keel::fail("[internal] ", __FILE__, ":", __LINE__, " assertion failed: " #condition); \
  } while (0)
