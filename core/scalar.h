#pragma once
// Scalar: a number passed to an op (x + 2, clamp(x, 0.0, 6.0)). It remembers whether it was a
// bool, an integer or a floating value, because PyTorch's promotion rules treat them apart:
// int tensor + 2.5 -> default float dtype, f16 tensor * 2.0 -> f16, i8 tensor + 5 -> i8.
#include <cstdint>
#include <type_traits>

#include "keel/core/dtype.h"

namespace keel {

class Scalar {
 public:
  enum class Kind : uint8_t { boolean, integral, floating };

  Scalar() : kind_(Kind::integral), int_value_(0) {}
  Scalar(bool value) : kind_(Kind::boolean), int_value_(value) {}
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Scalar(T value) : kind_(Kind::integral), int_value_(static_cast<int64_t>(value)) {}
  template <typename T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
  Scalar(T value) : kind_(Kind::floating), float_value_(static_cast<double>(value)) {}
  Scalar(Half value) : Scalar(static_cast<double>(static_cast<float>(value))) {}
  Scalar(BFloat16 value) : Scalar(static_cast<double>(static_cast<float>(value))) {}

  Kind kind() const { return kind_; }
  bool is_floating() const { return kind_ == Kind::floating; }
  bool is_integral() const { return kind_ == Kind::integral; }
  bool is_bool() const { return kind_ == Kind::boolean; }
  double to_double() const { return kind_ == Kind::floating ? float_value_ : static_cast<double>(int_value_); }
  // Floating values truncate toward zero; NaN gives 0 and out-of-range values saturate (a plain
  // cast is undefined behaviour there), the same rule as kernels/convert.h.
  int64_t to_int64() const {
    if (kind_ != Kind::floating) return int_value_;
    if (float_value_ != float_value_) return 0;
    if (float_value_ <= -9223372036854775808.0) return INT64_MIN;
    if (float_value_ >= 9223372036854775808.0) return INT64_MAX;
    return static_cast<int64_t>(float_value_);
  }
  template <typename T> T to() const {
    if constexpr (std::is_same_v<T, bool>) {
      return kind_ == Kind::floating ? float_value_ != 0.0 : int_value_ != 0;
    } else if constexpr (std::is_integral_v<T>) {
      return static_cast<T>(to_int64());
    } else {
      return static_cast<T>(to_double());
    }
  }
  // The dtype a 0-dim tensor made from this scalar would have: bool, i64 or f64.
  DType natural_dtype() const {
    return kind_ == Kind::floating ? DType::f64 : kind_ == Kind::integral ? DType::i64 : DType::bool_;
  }

 private:
  Kind kind_;
  union {
    int64_t int_value_;
    double float_value_;
  };
};

}  // namespace keel
