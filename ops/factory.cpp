// Deterministic factories: zeros, ones, full, arange, linspace, eye, tensor({...}), *_like.
// Random factories are in ops/random.cpp.
//
// arange, linspace, eye and tensor fill a CPU tensor element by element (they are cheap and
// run once), then move it to the requested device. The formulas follow PyTorch's CPU kernels:
//   arange    size = ceil((end - start) / step), exact integer arithmetic for i64:
//             ((end - start + step - sign(step)) / step); x[i] = start + step * i in the
//             accumulation type (i64 for integers, double for f32/f64, float for f16/bf16)
//   linspace  step = (end - start) / (steps - 1); symmetric so that both endpoints are exact:
//             x[i] = start + step * i for i < steps / 2, end - step * (steps - 1 - i) after
// The floating products are fused (std::fma: one rounding): deterministic on every machine,
// and what PyTorch's CPU build (compiled with FMA contraction) returns.
#include "keel/ops/factory.h"

#include <cmath>
#include <limits>

#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/dispatch.h"

namespace keel {

Tensor zeros(Shape shape, TensorOptions options) { return full(std::move(shape), 0, options); }
Tensor ones(Shape shape, TensorOptions options) { return full(std::move(shape), 1, options); }
Tensor full(Shape shape, const Scalar& value, TensorOptions options) {
  Tensor out = empty(std::move(shape), options);
  out.fill_(value);
  return out;
}

Tensor empty_like(const Tensor& x) { return empty(x.shape(), x.options()); }
Tensor zeros_like(const Tensor& x) { return zeros(x.shape(), x.options()); }
Tensor ones_like(const Tensor& x) { return ones(x.shape(), x.options()); }
Tensor full_like(const Tensor& x, const Scalar& value) { return full(x.shape(), value, x.options()); }

Tensor scalar_tensor(const Scalar& value, std::optional<DType> dtype, Device device) {
  Tensor out = empty({}, {dtype.value_or(value.natural_dtype()), Device::cpu()});
  cpu::fill(out, value);
  return device.is_cpu() ? out : out.to(device);
}

namespace {
Tensor to_device(Tensor host, Device device) { return device.is_cpu() ? host : host.to(device); }
}  // namespace

// ---- arange ---------------------------------------------------------------------------------
Tensor arange(const Scalar& end) { return arange(0, end, 1); }

Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step) {
  const bool all_integral = !start.is_floating() && !end.is_floating() && !step.is_floating();
  return arange(start, end, step, {all_integral ? DType::i64 : DType::f32, Device::cpu()});
}

Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step, TensorOptions options) {
  KEEL_CHECK(options.dtype != DType::bool_, "[arange] bool dtype is not supported");
  int64_t size = 0;
  if (options.dtype == DType::i64) {
    // PyTorch converts the bounds to the accumulation type (truncating) and counts exactly.
    const int64_t first = start.to<int64_t>(), last = end.to<int64_t>(), stride = step.to<int64_t>();
    KEEL_CHECK(stride != 0, "[arange] step must be nonzero, got ", step.to_double());
    KEEL_CHECK((stride > 0 && last >= first) || (stride < 0 && last <= first),
               "[arange] upper bound and lower bound inconsistent with step sign: start ", first, ", end ",
               last, ", step ", stride);
    // In 128 bits: end - start spans up to 2^64 (arange(INT64_MIN, INT64_MAX) overflowed int64).
    const __int128 sign = stride > 0 ? 1 : -1;
    const __int128 count = (static_cast<__int128>(last) - first + stride - sign) / stride;
    KEEL_CHECK(count <= std::numeric_limits<int64_t>::max(), "[arange] invalid size, possible overflow: start ",
               first, ", end ", last, ", step ", stride);
    size = static_cast<int64_t>(count);
  } else {
    const double first = start.to_double(), last = end.to_double(), stride = step.to_double();
    if (is_integral(options.dtype)) {
      KEEL_CHECK(step.to<int64_t>() != 0, "[arange] step must be nonzero, got ", stride);
    } else {
      KEEL_CHECK(stride != 0, "[arange] step must be nonzero");
    }
    KEEL_CHECK(std::isfinite(first) && std::isfinite(last), "[arange] unsupported range: ", first, " -> ",
               last);
    KEEL_CHECK((stride > 0 && last >= first) || (stride < 0 && last <= first),
               "[arange] upper bound and lower bound inconsistent with step sign: start ", first, ", end ",
               last, ", step ", stride);
    const double size_d = std::ceil((last - first) / stride);
    KEEL_CHECK(size_d >= 0 && size_d <= static_cast<double>(std::numeric_limits<int64_t>::max()),
               "[arange] invalid size ", size_d, ", possible overflow");
    size = static_cast<int64_t>(size_d);
  }
  Tensor out = empty({size}, {options.dtype, Device::cpu()});
  dispatch_all(options.dtype, "arange", [&]<typename T>() {
    T* data = static_cast<T*>(out.raw_data());
    if constexpr (std::is_integral_v<T>) {
      const int64_t first = start.to<int64_t>(), stride = step.to<int64_t>();
      // start + step * i never leaves [start, end], but step * i alone can pass 2^63: modulo 2^64.
      for (int64_t i = 0; i < size; ++i)
        data[i] = static_cast<T>(static_cast<uint64_t>(first) + static_cast<uint64_t>(stride) * static_cast<uint64_t>(i));
    } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) {
      const float first = static_cast<float>(start.to_double()), stride = static_cast<float>(step.to_double());
      for (int64_t i = 0; i < size; ++i) data[i] = T(std::fma(stride, static_cast<float>(i), first));
    } else {
      const double first = start.to_double(), stride = step.to_double();
      for (int64_t i = 0; i < size; ++i) data[i] = static_cast<T>(std::fma(stride, static_cast<double>(i), first));
    }
  });
  return to_device(out, options.device);
}

// ---- linspace -------------------------------------------------------------------------------
Tensor linspace(double start, double end, int64_t steps, TensorOptions options) {
  KEEL_CHECK(steps >= 0, "[linspace] number of steps must be non-negative, got ", steps);
  Tensor out = empty({steps}, {options.dtype, Device::cpu()});
  if (steps == 1) {
    cpu::fill(out, start);
  } else if (steps > 1) {
    const int64_t halfway = steps / 2;
    dispatch_all(options.dtype, "linspace", [&]<typename T>() {
      T* data = static_cast<T*>(out.raw_data());
      // Integers: bounds converted to T first, the step in double (as PyTorch). f32/f16/bf16 in
      // float, f64 in double.
      using Step = std::conditional_t<std::is_same_v<T, double> || std::is_integral_v<T>, double, float>;
      const Step first = std::is_integral_v<T> ? static_cast<Step>(convert<T>(start)) : static_cast<Step>(start);
      const Step last = std::is_integral_v<T> ? static_cast<Step>(convert<T>(end)) : static_cast<Step>(end);
      const Step step = (last - first) / static_cast<Step>(steps - 1);
      for (int64_t i = 0; i < steps; ++i) {
        const Step value = i < halfway ? std::fma(step, static_cast<Step>(i), first)
                                       : std::fma(-step, static_cast<Step>(steps - 1 - i), last);
        data[i] = convert<T>(value);
      }
    });
  }
  return to_device(out, options.device);
}

// ---- eye ------------------------------------------------------------------------------------
Tensor eye(int64_t n, int64_t m, TensorOptions options) {
  KEEL_CHECK(n >= 0, "[eye] n must be greater or equal to 0, got ", n);
  if (m < 0) m = n;
  Tensor out = zeros({n, m}, {options.dtype, Device::cpu()});
  dispatch_all(options.dtype, "eye", [&]<typename T>() {
    T* data = static_cast<T*>(out.raw_data());
    const T one = convert<T>(1);
    for (int64_t i = 0; i < std::min(n, m); ++i) data[i * m + i] = one;
  });
  return to_device(out, options.device);
}

// ---- tensor({...}) ---------------------------------------------------------------------------
Scalar NestedList::scalar() const {
  KEEL_CHECK(!is_list_, "[tensor] NestedList::scalar() called on a list of ", children_.size(), " elements");
  switch (kind_) {
    case Scalar::Kind::boolean: return Scalar(value_ != 0.0);
    case Scalar::Kind::integral: return Scalar(int_value_);
    case Scalar::Kind::floating: break;
  }
  return Scalar(value_);
}

namespace {
// Checks that every node at depth d is a list of shape[d] children (d < rank) or a number.
void check_rectangular(const NestedList& node, const Shape& shape, size_t depth) {
  if (depth == shape.size()) {
    KEEL_CHECK(!node.is_list(), "[tensor] ragged nested list: expected a number at depth ", depth,
               ", got a list of ", node.children().size(), " elements");
    return;
  }
  KEEL_CHECK(node.is_list(), "[tensor] ragged nested list: expected a sequence of length ", shape[depth],
             " at depth ", depth, ", got a number");
  KEEL_CHECK(static_cast<int64_t>(node.children().size()) == shape[depth],
             "[tensor] ragged nested list: expected a sequence of length ", shape[depth], " at depth ", depth,
             " (got ", node.children().size(), ")");
  for (const NestedList& child : node.children()) check_rectangular(child, shape, depth + 1);
}

void collect_leaves(const NestedList& node, std::vector<Scalar>& leaves) {
  if (!node.is_list()) {
    leaves.push_back(node.scalar());
    return;
  }
  for (const NestedList& child : node.children()) collect_leaves(child, leaves);
}

// c10::overflows as torch.tensor applies it: integer targets reject values outside their range
// (unsigned targets accept negative integers down to -max, which wrap); floating targets
// never overflow (they round to inf).
template <typename T> bool overflows(const Scalar& value) {
  if constexpr (!std::is_integral_v<T> || std::is_same_v<T, bool>) {
    return false;
  } else {
    constexpr double lowest = static_cast<double>(std::numeric_limits<T>::lowest());
    constexpr double highest = static_cast<double>(std::numeric_limits<T>::max());
    if (value.is_floating()) {
      const double v = value.to_double();
      return std::isnan(v) || v < lowest || v > highest;
    }
    const int64_t v = value.to_int64();
    if constexpr (std::is_unsigned_v<T>) {
      return v > static_cast<int64_t>(highest) || (v < 0 && -v > static_cast<int64_t>(highest));
    } else {
      return v < static_cast<int64_t>(lowest) || v > static_cast<int64_t>(highest);
    }
  }
}
}  // namespace

Tensor tensor(const NestedList& values, std::optional<DType> dtype, Device device) {
  Shape shape;
  for (const NestedList* node = &values; node->is_list(); node = &node->children().front()) {
    shape.push_back(static_cast<int64_t>(node->children().size()));
    if (node->children().empty()) break;
  }
  check_rectangular(values, shape, 0);
  std::vector<Scalar> leaves;
  leaves.reserve(static_cast<size_t>(shape_numel(shape)));
  collect_leaves(values, leaves);

  // torch.tensor's inference: any float -> the default float dtype, else any integer -> i64,
  // else (all bools) bool; no elements at all -> the default float dtype.
  DType inferred = leaves.empty() ? DType::f32 : DType::bool_;
  for (const Scalar& leaf : leaves) {
    if (leaf.is_floating()) {
      inferred = DType::f32;
      break;
    }
    if (leaf.is_integral()) inferred = DType::i64;
  }
  const DType target = dtype.value_or(inferred);

  Tensor out = empty(shape, {target, Device::cpu()});
  dispatch_all(target, "tensor", [&]<typename T>() {
    T* data = static_cast<T*>(out.raw_data());
    for (size_t i = 0; i < leaves.size(); ++i) {
      const Scalar& leaf = leaves[i];
      KEEL_CHECK(!overflows<T>(leaf), "[tensor] value ", leaf.is_floating() ? leaf.to_double() : leaf.to_int64(),
                 " cannot be converted to ", dtype_name(target), " without overflow");
      if (leaf.is_floating()) data[i] = convert<T>(leaf.to_double());
      else if (leaf.is_integral()) data[i] = convert<T>(leaf.to_int64());
      else data[i] = convert<T>(leaf.to<bool>());
    }
  });
  return to_device(out, device);
}

}  // namespace keel
