// CUDA unary elementwise kernels: out = op(x), same contract as cpu::unary.
//
//   out[i] = op(x[i]) computed in compute_t (f32 for f16/bf16); predicates write bool.
//   bytes per element: itemsize(x) + itemsize(out); math: kernels/op_math.h (shared with CPU).
//   reference: kernels/reference unary() in float64 (tests compare CUDA against the CPU kernels).
#include "keel/kernels/convert.h"
#include "keel/kernels/cuda/cuda_kernels.h"
#include "keel/kernels/cuda/elementwise.cuh"
#include "keel/kernels/dispatch.h"

namespace keel::cuda {

namespace {

template <UnaryOp op, typename T> struct UnaryFunctor {
  __device__ __forceinline__ T operator()(T x) const {
    using C = compute_t<T>;
    return static_cast<T>(math::unary<op>(static_cast<C>(x)));
  }
};

template <UnaryOp op, typename T> struct UnaryPredicateFunctor {
  __device__ __forceinline__ bool operator()(T x) const {
    using C = compute_t<T>;
    return math::unary_predicate<op>(static_cast<C>(x));
  }
};

template <bool floating_only, typename F> void dispatch_for(DType dtype, const char* op, F&& body) {
  if constexpr (floating_only) dispatch_floating(dtype, op, body);
  else dispatch_all(dtype, op, body);
}


template <UnaryOp op> void unary_typed(const Tensor& out, const Tensor& x) {
  dispatch_for<unary_floating_only(op)>(x.dtype(), "unary", [&]<typename T>() {
    if constexpr (unary_gives_bool(op)) {
      detail::elementwise<bool, T>("unary", UnaryPredicateFunctor<op, T>{}, {&out, &x});
    } else {
      detail::elementwise<T, T>("unary", UnaryFunctor<op, T>{}, {&out, &x});
    }
  });
}

}  // namespace

void unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  switch (op) {
#define KEEL_UNARY_CASE(name) \
  case UnaryOp::name: return unary_typed<UnaryOp::name>(out, x);
    KEEL_FORALL_UNARY_OPS(KEEL_UNARY_CASE)
#undef KEEL_UNARY_CASE
  }
}

}  // namespace keel::cuda
