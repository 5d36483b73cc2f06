// CUDA where and clamp, same contracts as cpu::where and cpu::clamp.
//
//   where:  out[i] = condition[i] ? a[i] : b[i]         condition bool; out, a, b one dtype
//   clamp:  out[i] = min(max(x[i], low[i]), high[i])    NaN in x kept; absent bounds skipped
//   bytes per element: where 1 + 3 * itemsize, clamp 4 * itemsize (bounds usually broadcast).
#include "keel/kernels/convert.h"
#include "keel/kernels/cuda/cuda_kernels.h"
#include "keel/kernels/cuda/elementwise.cuh"
#include "keel/kernels/dispatch.h"

namespace keel::cuda {

namespace {

template <typename T> struct WhereFunctor {
  __device__ __forceinline__ T operator()(bool condition, T a, T b) const { return condition ? a : b; }
};

template <typename T> struct ClampFunctor {
  bool has_low, has_high;
  __device__ __forceinline__ T operator()(T x, T low, T high) const {
    using C = compute_t<T>;
    return static_cast<T>(
        math::clamp(static_cast<C>(x), static_cast<C>(low), static_cast<C>(high), has_low, has_high));
  }
};

}  // namespace

void where(const Tensor& out, const Tensor& condition, const Tensor& a, const Tensor& b) {
  KEEL_ASSERT(condition.dtype() == DType::bool_);
  dispatch_all(out.dtype(), "where", [&]<typename T>() {
    detail::elementwise<T, bool, T, T>("where", WhereFunctor<T>{}, {&out, &condition, &a, &b});
  });
}

void clamp(const Tensor& out, const Tensor& x, const Tensor& low, const Tensor& high) {
  const bool has_low = low.defined(), has_high = high.defined();
  // An absent bound is passed as x itself so that the loop has a fixed arity; it is ignored.
  const Tensor& low_or_x = has_low ? low : x;
  const Tensor& high_or_x = has_high ? high : x;
  dispatch_all(out.dtype(), "clamp", [&]<typename T>() {
    detail::elementwise<T, T, T, T>("clamp", ClampFunctor<T>{has_low, has_high},
                                    {&out, &x, &low_or_x, &high_or_x});
  });
}

}  // namespace keel::cuda
