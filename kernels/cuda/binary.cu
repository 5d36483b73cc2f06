// CUDA binary elementwise kernels: out = op(a, b), same contract as cpu::binary.
//
//   out[i] = op(a[i], b[i]) in compute_t (f32 for f16/bf16); comparisons and logical ops write
//   bool. a and b share a dtype and out's shape (broadcasts are stride-0 views, and a
//   broadcast scalar stays on the vectorized contiguous path).
//   bytes per element: 2 * itemsize(a) + itemsize(out); math: kernels/op_math.h.
#include "keel/kernels/convert.h"
#include "keel/kernels/cuda/cuda_kernels.h"
#include "keel/kernels/cuda/elementwise.cuh"
#include "keel/kernels/dispatch.h"

namespace keel::cuda {

namespace {

template <BinaryOp op, typename T> struct BinaryFunctor {
  __device__ __forceinline__ T operator()(T a, T b) const {
    using C = compute_t<T>;
    return static_cast<T>(math::binary<op>(static_cast<C>(a), static_cast<C>(b)));
  }
};

template <BinaryOp op, typename T> struct BinaryPredicateFunctor {
  __device__ __forceinline__ bool operator()(T a, T b) const {
    using C = compute_t<T>;
    return math::binary_predicate<op>(static_cast<C>(a), static_cast<C>(b));
  }
};

template <bool floating_only, typename F> void dispatch_for(DType dtype, const char* op, F&& body) {
  if constexpr (floating_only) dispatch_floating(dtype, op, body);
  else dispatch_all(dtype, op, body);
}

template <BinaryOp op> void binary_typed(const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_for<binary_floating_only(op)>(a.dtype(), "binary", [&]<typename T>() {
    if constexpr (binary_gives_bool(op)) {
      detail::elementwise<bool, T, T>("binary", BinaryPredicateFunctor<op, T>{}, {&out, &a, &b});
    } else {
      detail::elementwise<T, T, T>("binary", BinaryFunctor<op, T>{}, {&out, &a, &b});
    }
  });
}

}  // namespace

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
#define KEEL_BINARY_CASE(name) \
  case BinaryOp::name: return binary_typed<BinaryOp::name>(out, a, b);
    KEEL_FORALL_BINARY_OPS(KEEL_BINARY_CASE)
#undef KEEL_BINARY_CASE
  }
}

}  // namespace keel::cuda
