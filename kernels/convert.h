#pragma once
// Value conversion between dtypes, defined for every input (no undefined behaviour):
//   to bool:            x != 0 (NaN is true, as in PyTorch)
//   float -> integer:   truncation toward zero; NaN gives 0 and out-of-range values saturate
//                       (C++ leaves both undefined; PyTorch's result there is platform-specific)
//   everything else:    the C++ conversion through the compute type (f16/bf16 round to nearest even)
#include <limits>
#include <type_traits>

#include "keel/core/dtype.h"
#include "keel/core/macros.h"

namespace keel {

template <typename To, typename From> KEEL_HOST_DEVICE inline To convert(From value) {
  if constexpr (std::is_same_v<To, From>) {
    return value;
  } else {
    using Wide = compute_t<From>;
    const Wide wide = static_cast<Wide>(value);
    if constexpr (std::is_same_v<To, bool>) {
      return wide != Wide(0);
    } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<Wide>) {
      if (wide != wide) return To(0);
      constexpr double lowest = static_cast<double>(std::numeric_limits<To>::lowest());
      constexpr double highest = static_cast<double>(std::numeric_limits<To>::max());
      const double as_double = static_cast<double>(wide);
      if (as_double <= lowest) return std::numeric_limits<To>::lowest();
      if (as_double >= highest) return std::numeric_limits<To>::max();
      return static_cast<To>(wide);
    } else if constexpr (std::is_same_v<To, Half> || std::is_same_v<To, BFloat16>) {
      if constexpr (std::is_same_v<Wide, double>) return To(static_cast<double>(wide));
      else return To(static_cast<float>(wide));
    } else {
      return static_cast<To>(wide);
    }
  }
}

}  // namespace keel
