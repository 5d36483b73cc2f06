// Reduction CPU kernels: reduce (sum, prod, amax, amin, all, any over a set of dims) and
// arg_reduce (max/min value and its index along one dim).
//
//   out[k] = op over r of x[k, r]      k: kept index, r: reduced index (out has size 1 in r's dims)
//   bytes per call: numel(x) * itemsize(x) + numel(out) * itemsize(out); FLOPs: numel(x).
//   reference: kernels/reference/reference.h reduce() in float64.
//
// Simple first version: one generic strided walk per output element.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/isa_table.h"
#include "keel/kernels/cpu/strided_loop.h"
#include "keel/kernels/dispatch.h"

namespace keel::cpu::KEEL_CPU_ISA {

void copy(const Tensor& dst, const Tensor& src);  // elementwise.isa.cpp

namespace {

template <typename T> inline bool is_nan_value(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  else return false;
}

// Accumulator type of op with result type O.
template <ReduceOp op, typename O> struct AccOf {
  using type = compute_t<O>;
};
template <typename O> struct AccOf<ReduceOp::sum, O> {
  using type = std::conditional_t<std::is_floating_point_v<compute_t<O>>, double, int64_t>;
};
template <typename O> struct AccOf<ReduceOp::prod, O> {
  using type = std::conditional_t<std::is_floating_point_v<compute_t<O>>, double, int64_t>;
};
template <typename O> struct AccOf<ReduceOp::all, O> { using type = bool; };
template <typename O> struct AccOf<ReduceOp::any, O> { using type = bool; };
template <ReduceOp op, typename O> using acc_t = typename AccOf<op, O>::type;

template <ReduceOp op, typename A> inline A identity() {
  if constexpr (op == ReduceOp::sum) return A(0);
  else if constexpr (op == ReduceOp::prod) return A(1);
  else if constexpr (op == ReduceOp::all) return true;
  else if constexpr (op == ReduceOp::any) return false;
  else if constexpr (op == ReduceOp::amax) {
    if constexpr (std::is_floating_point_v<A>) return -std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::lowest();
  } else {
    if constexpr (std::is_floating_point_v<A>) return std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::max();
  }
}

template <ReduceOp op, typename A> inline A combine(A a, A b) {
  if constexpr (op == ReduceOp::sum) {
    if constexpr (std::is_same_v<A, int64_t>)
      return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
    else return a + b;
  } else if constexpr (op == ReduceOp::prod) {
    if constexpr (std::is_same_v<A, int64_t>)
      return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
    else return a * b;
  } else if constexpr (op == ReduceOp::all) {
    return a && b;
  } else if constexpr (op == ReduceOp::any) {
    return a || b;
  } else if constexpr (op == ReduceOp::amax) {
    return (b > a || is_nan_value(b)) ? b : a;
  } else {
    return (b < a || is_nan_value(b)) ? b : a;
  }
}

// One element of x (dtype X) read as op's accumulator for result type O.
template <ReduceOp op, typename O, typename X> inline acc_t<op, O> load(X v) {
  using A = acc_t<op, O>;
  if constexpr (op == ReduceOp::all || op == ReduceOp::any) return convert<bool>(v);
  else return static_cast<A>(static_cast<compute_t<O>>(convert<O>(v)));
}

struct Dim {
  int64_t size, x_stride, out_stride;  // strides in elements
  bool reduced;
};

template <ReduceOp op, typename O, typename X>
void reduce_typed(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  using A = acc_t<op, O>;
  const int64_t ndim = x.dim();
  std::vector<Dim> kept, reduced;
  for (int64_t d = 0; d < ndim; ++d) {
    if (x.shape()[d] == 1) continue;
    const bool is_reduced = std::find(dims.begin(), dims.end(), d) != dims.end();
    (is_reduced ? reduced : kept).push_back({x.shape()[d], x.strides()[d], out.strides()[d], is_reduced});
  }
  const X* x_data = static_cast<const X*>(x.raw_data());
  O* out_data = static_cast<O*>(out.raw_data());
  const int64_t out_count = out.numel();
  int64_t reduce_count = 1;
  for (const Dim& d : reduced) reduce_count *= d.size;
  if (x.numel() == 0) reduce_count = 0;
  for (int64_t k = 0; k < out_count; ++k) {
    int64_t x_offset = 0, out_offset = 0, rest = k;
    for (auto d = kept.rbegin(); d != kept.rend(); ++d) {
      const int64_t i = rest % d->size;
      rest /= d->size;
      x_offset += i * d->x_stride;
      out_offset += i * d->out_stride;
    }
    A acc = identity<op, A>();
    for (int64_t r = 0; r < reduce_count; ++r) {
      int64_t offset = x_offset, rest_r = r;
      for (auto d = reduced.rbegin(); d != reduced.rend(); ++d) {
        offset += (rest_r % d->size) * d->x_stride;
        rest_r /= d->size;
      }
      acc = combine<op>(acc, load<op, O>(x_data[offset]));
    }
    out_data[out_offset] = convert<O>(acc);
  }
}

// Instantiates the (result, input) dtype pairs ops use: equal dtypes, bool/integers summed into
// i64, anything tested by all/any into bool; other pairs convert x to out's dtype first.
template <ReduceOp op>
void reduce_op(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  if (out.dtype() == x.dtype()) {
    dispatch_all(x.dtype(), "reduce", [&]<typename T>() { reduce_typed<op, T, T>(out, x, dims); });
  } else if (out.dtype() == DType::bool_ && (op == ReduceOp::all || op == ReduceOp::any)) {
    dispatch_all(x.dtype(), "reduce", [&]<typename X>() { reduce_typed<op, bool, X>(out, x, dims); });
  } else if (out.dtype() == DType::i64 && (is_integral(x.dtype()) || x.dtype() == DType::bool_)) {
    switch (x.dtype()) {
      case DType::bool_: return reduce_typed<op, int64_t, bool>(out, x, dims);
      case DType::i8: return reduce_typed<op, int64_t, int8_t>(out, x, dims);
      case DType::u8: return reduce_typed<op, int64_t, uint8_t>(out, x, dims);
      case DType::i32: return reduce_typed<op, int64_t, int32_t>(out, x, dims);
      default: break;
    }
  } else {
    Tensor converted = empty(x.shape(), {out.dtype(), Device::cpu()});
    copy(converted, x);
    reduce_op<op>(out, converted, dims);
  }
}

template <bool is_max, typename T>
void arg_reduce_typed(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim) {
  using C = compute_t<T>;
  const int64_t ndim = x.dim();
  const int64_t length = x.shape()[dim], x_step = x.strides()[dim];
  std::vector<Dim> kept;
  for (int64_t d = 0; d < ndim; ++d)
    if (d != dim && x.shape()[d] != 1) kept.push_back({x.shape()[d], x.strides()[d], 0, false});
  const T* x_data = static_cast<const T*>(x.raw_data());
  T* value_data = static_cast<T*>(values.raw_data());
  int64_t* index_data = static_cast<int64_t*>(indices.raw_data());
  const int64_t out_count = values.numel();
  for (int64_t k = 0; k < out_count; ++k) {
    int64_t x_offset = 0, value_offset = 0, index_offset = 0, rest = k;
    for (int64_t d = ndim - 1; d >= 0; --d) {
      if (d == dim) continue;
      const int64_t i = rest % x.shape()[d];
      rest /= x.shape()[d];
      x_offset += i * x.strides()[d];
      value_offset += i * values.strides()[d];
      index_offset += i * indices.strides()[d];
    }
    C best = static_cast<C>(x_data[x_offset]);
    int64_t best_index = 0;
    for (int64_t i = 1; i < length && !is_nan_value(best); ++i) {
      const C v = static_cast<C>(x_data[x_offset + i * x_step]);
      if ((is_max ? v > best : v < best) || is_nan_value(v)) {
        best = v;
        best_index = i;
      }
    }
    value_data[value_offset] = static_cast<T>(best);
    index_data[index_offset] = best_index;
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  switch (op) {
    case ReduceOp::sum: return reduce_op<ReduceOp::sum>(out, x, dims);
    case ReduceOp::prod: return reduce_op<ReduceOp::prod>(out, x, dims);
    case ReduceOp::amax: return reduce_op<ReduceOp::amax>(out, x, dims);
    case ReduceOp::amin: return reduce_op<ReduceOp::amin>(out, x, dims);
    case ReduceOp::all: return reduce_op<ReduceOp::all>(out, x, dims);
    case ReduceOp::any: return reduce_op<ReduceOp::any>(out, x, dims);
  }
}

void arg_reduce(bool is_max, const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim) {
  KEEL_CHECK(values.dtype() == x.dtype(), "[arg_reduce] values must have x's dtype");
  if (x.numel() == 0) return;
  dispatch_all(x.dtype(), "arg_reduce", [&]<typename T>() {
    if (is_max) arg_reduce_typed<true, T>(values, indices, x, dim);
    else arg_reduce_typed<false, T>(values, indices, x, dim);
  });
}

}  // namespace keel::cpu::KEEL_CPU_ISA
