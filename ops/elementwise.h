#pragma once
// Elementwise ops with NumPy broadcasting, PyTorch's type promotion, scalar operands and
// in-place variants (name_). f16/bf16 are computed in f32. Integer inputs to floating
// functions (exp, sqrt, sigmoid, true division, ...) promote to f32, as in PyTorch.
#include "keel/core/tensor.h"

namespace keel {

// ---- unary --------------------------------------------------------------------------------
Tensor neg(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor log1p(const Tensor& x);
Tensor expm1(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
enum class GeluApproximation { none, tanh };  // none: x * Phi(x) with erf
Tensor gelu(const Tensor& x, GeluApproximation approximate = GeluApproximation::none);
// grad * gelu'(x) for exact gelu: grad * (Phi(x) + x phi(x)) (PyTorch's aten::gelu_backward,
// approximate='none'; grad has x's shape). The backward of gelu and of linear's gelu epilogue.
// With grad mode on (create_graph) it is the composite of public ops, differentiable again;
// otherwise on CPU one fused pass (cpu::gelu_erf_backward).
Tensor gelu_backward(const Tensor& grad, const Tensor& x);
Tensor silu(const Tensor& x);
Tensor erf(const Tensor& x);
// -1, 0 or 1 by the sign of x, in x's dtype (NaN gives 0, as torch 1.13); its gradient is 0.
Tensor sign(const Tensor& x);
Tensor logical_not(const Tensor& x);
Tensor isnan(const Tensor& x);
Tensor isinf(const Tensor& x);

Tensor& neg_(Tensor& x);
Tensor& abs_(Tensor& x);
Tensor& exp_(Tensor& x);
Tensor& log_(Tensor& x);
Tensor& log1p_(Tensor& x);
Tensor& expm1_(Tensor& x);
Tensor& sqrt_(Tensor& x);
Tensor& rsqrt_(Tensor& x);
Tensor& sin_(Tensor& x);
Tensor& cos_(Tensor& x);
Tensor& tanh_(Tensor& x);
Tensor& sigmoid_(Tensor& x);
Tensor& relu_(Tensor& x);
Tensor& gelu_(Tensor& x, GeluApproximation approximate = GeluApproximation::none);
Tensor& silu_(Tensor& x);
Tensor& erf_(Tensor& x);

// ---- binary (tensor or scalar operands) ------------------------------------------------------
#define KEEL_DECLARE_BINARY(name)                          \
  Tensor name(const Tensor& a, const Tensor& b);           \
  Tensor name(const Tensor& a, const Scalar& b);           \
  Tensor name(const Scalar& a, const Tensor& b);           \
  Tensor& name##_(Tensor& a, const Tensor& b);             \
  Tensor& name##_(Tensor& a, const Scalar& b);
KEEL_DECLARE_BINARY(add)
KEEL_DECLARE_BINARY(sub)
KEEL_DECLARE_BINARY(mul)
KEEL_DECLARE_BINARY(div)  // true division: integer operands give f32
KEEL_DECLARE_BINARY(pow)
KEEL_DECLARE_BINARY(maximum)  // NaN propagates, as torch.maximum
KEEL_DECLARE_BINARY(minimum)
// Comparisons and logical ops give bool; their in-place forms keep a's dtype.
KEEL_DECLARE_BINARY(eq)
KEEL_DECLARE_BINARY(ne)
KEEL_DECLARE_BINARY(lt)
KEEL_DECLARE_BINARY(le)
KEEL_DECLARE_BINARY(gt)
KEEL_DECLARE_BINARY(ge)
KEEL_DECLARE_BINARY(logical_and)
KEEL_DECLARE_BINARY(logical_or)
KEEL_DECLARE_BINARY(logical_xor)
#undef KEEL_DECLARE_BINARY

// ---- ternary and friends ---------------------------------------------------------------------
// where(condition, a, b): a where condition is true, b elsewhere; all three broadcast.
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& condition, const Tensor& a, const Scalar& b);
Tensor where(const Tensor& condition, const Scalar& a, const Tensor& b);
Tensor where(const Tensor& condition, const Scalar& a, const Scalar& b);
// clamp(x, min, max): either bound may be absent; NaN in x stays NaN (as PyTorch).
Tensor clamp(const Tensor& x, const Scalar& min, const Scalar& max);
Tensor clamp_min(const Tensor& x, const Scalar& min);
Tensor clamp_max(const Tensor& x, const Scalar& max);
Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max);  // tensor bounds broadcast
Tensor& clamp_(Tensor& x, const Scalar& min, const Scalar& max);

// ---- operators --------------------------------------------------------------------------------
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, const Scalar& b);
Tensor operator-(const Tensor& a, const Scalar& b);
Tensor operator*(const Tensor& a, const Scalar& b);
Tensor operator/(const Tensor& a, const Scalar& b);
Tensor operator+(const Scalar& a, const Tensor& b);
Tensor operator-(const Scalar& a, const Tensor& b);
Tensor operator*(const Scalar& a, const Tensor& b);
Tensor operator/(const Scalar& a, const Tensor& b);
Tensor operator==(const Tensor& a, const Tensor& b);
Tensor operator!=(const Tensor& a, const Tensor& b);
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);
Tensor operator==(const Tensor& a, const Scalar& b);
Tensor operator!=(const Tensor& a, const Scalar& b);
Tensor operator<(const Tensor& a, const Scalar& b);
Tensor operator<=(const Tensor& a, const Scalar& b);
Tensor operator>(const Tensor& a, const Scalar& b);
Tensor operator>=(const Tensor& a, const Scalar& b);
Tensor operator&&(const Tensor& a, const Tensor& b);
Tensor operator||(const Tensor& a, const Tensor& b);
Tensor operator!(const Tensor& x);

// ---- type promotion ---------------------------------------------------------------------------
// torch.result_type: dimensioned tensors outrank 0-dim tensors, which outrank scalars, but a
// lower-ranked operand of a higher category (float over int over bool) still lifts the category.
DType result_type(const Tensor& a, const Tensor& b);
DType result_type(const Tensor& a, const Scalar& b);
DType default_float_dtype();  // f32

}  // namespace keel
