// Elementwise ops: argument checks, PyTorch's type promotion, broadcasting, device binding.
// The math itself is kernels/op_math.h; the backward rules are below the entry points' helpers.
#include "keel/ops/elementwise.h"

#include <cstring>
#include <string>

#include "keel/autograd/grad_mode.h"
#include "keel/autograd/record.h"

#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/cuda/cuda_kernels.h"
#include "keel/ops/factory.h"
#include "keel/ops/reduce.h"
#include "keel/ops/shape.h"

namespace keel {

// ---- type promotion (c10's ResultTypeState) --------------------------------------------------
namespace {
enum class Priority { dimensioned, zero_dim, scalar };
struct ResultTypeState {
  std::optional<DType> dimensioned, zero_dim, scalar;
  void add(std::optional<DType>& slot, DType dtype) { slot = slot ? promote_types(*slot, dtype) : dtype; }
  void add(const Tensor& t) { add(t.dim() > 0 ? dimensioned : zero_dim, t.dtype()); }
  void add(const Scalar& s) {
    // A Python number: floats count as the default float dtype, ints as i64, bools as bool.
    add(scalar, s.is_floating() ? default_float_dtype() : s.natural_dtype());
  }
  static std::optional<DType> combine(std::optional<DType> higher, std::optional<DType> lower) {
    if (!higher) return lower;
    if (!lower || is_floating(*higher)) return higher;
    if (*higher == DType::bool_ || is_floating(*lower)) return promote_types(*higher, *lower);
    return higher;
  }
  DType result() const { return *combine(dimensioned, combine(zero_dim, scalar)); }
};
}  // namespace

DType default_float_dtype() { return DType::f32; }

DType result_type(const Tensor& a, const Tensor& b) {
  ResultTypeState state;
  state.add(a);
  state.add(b);
  return state.result();
}

DType result_type(const Tensor& a, const Scalar& b) {
  ResultTypeState state;
  state.add(a);
  state.add(b);
  return state.result();
}

// ---- helpers ----------------------------------------------------------------------------------
namespace {

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  KEEL_CHECK(a.device() == b.device(), "[", op, "] expected tensors on one device, got ", a.device().str(),
             " and ", b.device().str());
}

// `t` converted to dtype and broadcast to shape (views when nothing changes).
Tensor prepare(const Tensor& t, DType dtype, const Shape& shape) {
  Tensor converted = t.dtype() == dtype ? t : t.to(dtype);
  return converted.shape() == shape ? converted : converted.expand(shape);
}

// In-place ops write a result of type `computed` into a tensor of type `target`; PyTorch
// refuses when that would drop a category (float into int, int into bool).
void check_in_place_cast(const char* op, DType computed, DType target) {
  auto category = [](DType d) { return is_floating(d) ? 2 : is_integral(d) ? 1 : 0; };
  KEEL_CHECK(category(computed) <= category(target), "[", op, "] result type ", dtype_name(computed),
             " can't be cast to the in-place output type ", dtype_name(target));
}

void check_in_place_shape(const char* op, const Tensor& self, const Shape& shape) {
  KEEL_CHECK(shape == self.shape(), "[", op, "] in-place output of shape ", self.shape(),
             " does not match the broadcast shape ", shape);
}

// ---- unary ----
DType unary_compute_dtype(UnaryOp op, DType dtype) {
  if (unary_floating_only(op) && !is_floating(dtype)) return default_float_dtype();
  return dtype;
}

void launch_unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  if (out.is_cuda()) cuda::unary(op, out, x);
  else cpu::unary(op, out, x);
}

Tensor unary_op(UnaryOp op, const char* name, const Tensor& x) {
  if (op == UnaryOp::relu || op == UnaryOp::neg) {
    KEEL_CHECK(x.dtype() != DType::bool_, "[", name, "] not supported for bool tensors");
  }
  const DType compute = unary_gives_bool(op) ? x.dtype() : unary_compute_dtype(op, x.dtype());
  const Tensor input = x.dtype() == compute ? x : x.to(compute);
  Tensor out = empty(x.shape(), {unary_gives_bool(op) ? DType::bool_ : compute, x.device()});
  launch_unary(op, out, input);
  return out;
}

Tensor& unary_op_(UnaryOp op, const char* name, Tensor& x) {
  KEEL_CHECK(x.dtype() != DType::bool_ || op == UnaryOp::abs, "[", name, "_] not supported for bool tensors");
  const DType compute = unary_compute_dtype(op, x.dtype());
  check_in_place_cast(name, compute, x.dtype());
  check_no_internal_overlap(x, name);
  launch_unary(op, x, x);
  x.bump_version();
  return x;
}

// ---- binary ----
void launch_binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  if (out.is_cuda()) cuda::binary(op, out, a, b);
  else cpu::binary(op, out, a, b);
}

DType binary_compute_dtype(BinaryOp op, DType common) {
  if (binary_floating_only(op) && !is_floating(common)) return default_float_dtype();
  return common;
}

// PyTorch refuses `-` when either operand is bool (even a bool scalar), and an integer base
// with a negative integer scalar exponent.
void check_operand_dtypes(BinaryOp op, const char* name, DType a, DType b) {
  if (op == BinaryOp::sub) {
    KEEL_CHECK(a != DType::bool_ && b != DType::bool_, "[", name,
               "] subtraction with a bool tensor is not supported; to invert a mask use logical_not");
  }
}
void check_scalar_operand(BinaryOp op, const char* name, DType common, const Scalar& scalar) {
  if (op == BinaryOp::pow && !is_floating(common) && !scalar.is_floating()) {
    KEEL_CHECK(scalar.to_int64() >= 0, "[", name, "] integers to negative integer powers are not allowed (",
               dtype_name(common), " tensor to the power ", scalar.to_int64(), ")");
  }
}

Tensor binary_tensors(BinaryOp op, const char* name, const Tensor& a, const Tensor& b, DType common) {
  check_same_device(name, a, b);
  const DType compute = binary_compute_dtype(op, common);
  const Shape shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = empty(shape, {binary_gives_bool(op) ? DType::bool_ : compute, a.device()});
  launch_binary(op, out, prepare(a, compute, shape), prepare(b, compute, shape));
  return out;
}

Tensor& binary_in_place(BinaryOp op, const char* name, Tensor& a, const Tensor& b, DType common) {
  check_same_device(name, a, b);
  const DType compute = binary_compute_dtype(op, common);
  const Shape shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), name);
  check_in_place_shape(name, a, shape);
  const DType result = binary_gives_bool(op) ? DType::bool_ : compute;
  if (!binary_gives_bool(op)) check_in_place_cast(name, result, a.dtype());
  check_no_internal_overlap(a, name);
  if (result == a.dtype() && compute == a.dtype()) {
    launch_binary(op, a, a, unaliased_input(prepare(b, compute, shape), a));
  } else {
    Tensor out = empty(shape, {result, a.device()});
    launch_binary(op, out, prepare(a, compute, shape), prepare(b, compute, shape));
    a.copy_(out);
  }
  a.bump_version();
  return a;
}

}  // namespace

// ---- backward rules ----------------------------------------------------------------------------
// dx = dy * f'(x), written with public ops so that the vjps are differentiable again.
//   abs: sign(x)      exp: y        log: 1/x        log1p: 1/(1+x)    expm1: y+1
//   sqrt: 1/(2y)      rsqrt: -y^3/2 sin: cos x      cos: -sin x       tanh: 1-y^2
//   sigmoid: y(1-y)   relu: [y>0]   silu: s(1 + x(1-s)), s = sigmoid(x)
//   erf: 2/sqrt(pi) e^(-x^2)        gelu: Phi(x) + x phi(x) (erf), or the tanh form's derivative
//   a+b, a-b: 1, +-1  a*b: b, a     a/b: 1/b, -a/b^2
//   a^b: b a^(b-1) (0 where b = 0), a^b ln a (0 where a = 0 and b >= 0)      (PyTorch's masks)
//   maximum/minimum: the gradient goes to the selected operand, split in half on ties
// Broadcast operands get their gradient summed back to their shape.
namespace {

using autograd::OpRecord;
using autograd::TensorList;
using autograd::VjpArgs;

Tensor unary_vjp(UnaryOp op, const Tensor& g, const Tensor& x, const Tensor& y) {
  switch (op) {
    case UnaryOp::neg: return -g;
    case UnaryOp::abs: return g * sign(x);
    case UnaryOp::exp: return g * y;
    case UnaryOp::log: return g / x;
    case UnaryOp::log1p: return g / (x + 1);
    case UnaryOp::expm1: return g * (y + 1);
    case UnaryOp::sqrt: return g / (y * 2);
    case UnaryOp::rsqrt: return g * (y * y * y * -0.5);
    case UnaryOp::sin: return g * cos(x);
    case UnaryOp::cos: return g * -sin(x);
    case UnaryOp::tanh: return g * (1 - y * y);
    case UnaryOp::sigmoid: return g * (y * (1 - y));
    case UnaryOp::relu: return where(gt(y, 0), g, 0);
    case UnaryOp::silu: {
      const Tensor s = sigmoid(x);
      return g * (s * (1 + x * (1 - s)));
    }
    case UnaryOp::erf: return g * (exp(-(x * x)) * 1.1283791670955126);  // 2 / sqrt(pi)
    case UnaryOp::gelu_erf: return gelu_backward(g, x);
    case UnaryOp::gelu_tanh: {
      constexpr double k = 0.79788456080286535588, c = 0.044715;  // sqrt(2 / pi)
      const Tensor t = tanh((x + x * x * x * c) * k);
      const Tensor inner_derivative = (x * x * (3 * c) + 1) * k;
      return g * ((t + 1) * 0.5 + x * 0.5 * (1 - t * t) * inner_derivative);
    }
    default: KEEL_ASSERT(false && "unary op has no derivative");
  }
  return Tensor();
}

// Which values the unary vjp reads: the input, the output, or neither.
bool unary_vjp_reads_output(UnaryOp op) {
  return op == UnaryOp::exp || op == UnaryOp::expm1 || op == UnaryOp::sqrt || op == UnaryOp::rsqrt ||
         op == UnaryOp::tanh || op == UnaryOp::sigmoid || op == UnaryOp::relu;
}

Tensor unary_recorded(UnaryOp op, const char* name, const Tensor& x) {
  OpRecord record(name, x);
  record.trace_attr("tanh", op == UnaryOp::gelu_tanh);  // gelu's approximation
  Tensor out = unary_op(op, name, x);
  if (record) {
    const bool reads_output = unary_vjp_reads_output(op);
    const Tensor saved = op == UnaryOp::neg ? Tensor() : reads_output ? out : x;
    record.finish({out}, {saved}, [op, reads_output](const VjpArgs& a) {
      const Tensor& value = a.saved[0];
      return TensorList{unary_vjp(op, a.grad(), reads_output ? Tensor() : value, reads_output ? value : Tensor())};
    });
  }
  return out;
}

Tensor& unary_recorded_(UnaryOp op, const char* name, Tensor& x) {
  const std::string in_place_name = std::string(name) + "_";
  if (autograd::in_place_records(in_place_name.c_str(), x)) {
    return autograd::in_place_with_history(in_place_name.c_str(), x,
                                           [&](const Tensor& old) { return unary_recorded(op, name, old); });
  }
  return unary_op_(op, name, x);
}

bool binary_differentiable(BinaryOp op) { return op <= BinaryOp::minimum; }

TensorList binary_vjp(BinaryOp op, const VjpArgs& args) {
  const Tensor& g = args.grad();
  const Tensor& a = args.saved[0];
  const Tensor& b = args.saved[1];
  Tensor grad_a, grad_b;
  switch (op) {
    case BinaryOp::add: grad_a = g, grad_b = g; break;
    case BinaryOp::sub: grad_a = g, grad_b = args.needs(1) ? -g : Tensor(); break;
    case BinaryOp::mul:
      if (args.needs(0)) grad_a = g * b;
      if (args.needs(1)) grad_b = g * a;
      break;
    case BinaryOp::div:
      if (args.needs(0)) grad_a = g / b;
      if (args.needs(1)) grad_b = -g * a / (b * b);
      break;
    case BinaryOp::pow:
      if (args.needs(0)) grad_a = where(eq(b, 0), 0, g * b * pow(a, b - 1));
      if (args.needs(1)) grad_b = where(logical_and(eq(a, 0), ge(b, 0)), 0, g * args.saved[2] * log(a));
      break;
    case BinaryOp::maximum:
    case BinaryOp::minimum: {
      const Tensor shared = where(eq(a, b), g * 0.5, g);
      const bool is_max = op == BinaryOp::maximum;
      if (args.needs(0)) grad_a = masked_fill(shared, is_max ? lt(a, b) : gt(a, b), 0);
      if (args.needs(1)) grad_b = masked_fill(shared, is_max ? gt(a, b) : lt(a, b), 0);
      break;
    }
    default: KEEL_ASSERT(false && "binary op has no derivative");
  }
  return {grad_a, grad_b};
}

Tensor binary_recorded(BinaryOp op, const char* name, const Tensor& a, const Tensor& b, DType common) {
  if (!binary_differentiable(op)) return binary_tensors(op, name, a, b, common);
  OpRecord record(name, a, b);
  Tensor out = binary_tensors(op, name, a, b, common);
  if (record) {
    const bool reads_operands = op != BinaryOp::add && op != BinaryOp::sub;
    const TensorList saved = !reads_operands ? TensorList{} : op == BinaryOp::pow ? TensorList{a, b, out} : TensorList{a, b};
    record.finish({out}, saved, [op](const VjpArgs& args) {
      TensorList grads = binary_vjp(op, args);
      if (grads[0].defined()) grads[0] = sum_to_size(grads[0], args.input_shape(0));
      if (grads[1].defined()) grads[1] = sum_to_size(grads[1], args.input_shape(1));
      return grads;
    });
  }
  return out;
}

Tensor& binary_recorded_(BinaryOp op, const char* name, Tensor& a, const Tensor& b, DType common) {
  if (binary_differentiable(op) && autograd::in_place_records(name, a, b)) {
    const std::string node_name(name, std::strlen(name) - 1);  // "mul_" records as "mul", as exp_ as "exp"
    return autograd::in_place_with_history(name, a, [&](const Tensor& old) {
      const Tensor operand = autograd::operand_before_write(b, a, old);
      return binary_recorded(op, node_name.c_str(), old, operand, result_type(old, operand));
    });
  }
  return binary_in_place(op, name, a, b, common);
}

}  // namespace

// ---- unary entry points -----------------------------------------------------------------------
#define KEEL_DEFINE_UNARY(name)                                                       \
  Tensor name(const Tensor& x) { return unary_recorded(UnaryOp::name, #name, x); }   \
  Tensor& name##_(Tensor& x) { return unary_recorded_(UnaryOp::name, #name, x); }
KEEL_DEFINE_UNARY(neg)
KEEL_DEFINE_UNARY(abs)
KEEL_DEFINE_UNARY(exp)
KEEL_DEFINE_UNARY(log)
KEEL_DEFINE_UNARY(log1p)
KEEL_DEFINE_UNARY(expm1)
KEEL_DEFINE_UNARY(sqrt)
KEEL_DEFINE_UNARY(rsqrt)
KEEL_DEFINE_UNARY(sin)
KEEL_DEFINE_UNARY(cos)
KEEL_DEFINE_UNARY(tanh)
KEEL_DEFINE_UNARY(sigmoid)
KEEL_DEFINE_UNARY(relu)
KEEL_DEFINE_UNARY(silu)
KEEL_DEFINE_UNARY(erf)
#undef KEEL_DEFINE_UNARY

Tensor gelu_backward(const Tensor& grad, const Tensor& x) {
  KEEL_CHECK(grad.shape() == x.shape(), "[gelu_backward] grad and x must have one shape: got ", grad.shape(), " and ",
             x.shape());
  if (!autograd::GradMode::is_enabled() && x.is_cpu() && grad.is_cpu() && grad.dtype() == x.dtype() &&
      is_floating(x.dtype())) {
    Tensor out = empty(x.shape(), x.options());
    cpu::gelu_erf_backward(out, grad, x);
    return out;
  }
  // The composite: the spec, the graph for higher-order gradients, and other devices.
  const Tensor cdf = (erf(x * 0.70710678118654752440) + 1) * 0.5;
  const Tensor pdf = exp(x * x * -0.5) * 0.39894228040143267794;  // 1 / sqrt(2 pi)
  return grad * (cdf + x * pdf);
}

Tensor gelu(const Tensor& x, GeluApproximation approximate) {
  return unary_recorded(approximate == GeluApproximation::tanh ? UnaryOp::gelu_tanh : UnaryOp::gelu_erf, "gelu", x);
}
Tensor& gelu_(Tensor& x, GeluApproximation approximate) {
  return unary_recorded_(approximate == GeluApproximation::tanh ? UnaryOp::gelu_tanh : UnaryOp::gelu_erf, "gelu", x);
}
Tensor sign(const Tensor& x) {
  KEEL_CHECK(x.defined(), "[sign] got an undefined tensor");
  if (x.dtype() == DType::bool_) return x.clone();
  OpRecord record("sign", x);
  Tensor out = gt(x, 0).to(x.dtype()) - lt(x, 0).to(x.dtype());
  if (record) record.finish({out}, {}, [](const VjpArgs& a) { return TensorList{zeros_like(a.grad())}; });
  return out;
}
Tensor logical_not(const Tensor& x) { return unary_op(UnaryOp::logical_not, "logical_not", x); }
Tensor isnan(const Tensor& x) { return unary_op(UnaryOp::isnan, "isnan", x); }
Tensor isinf(const Tensor& x) { return unary_op(UnaryOp::isinf, "isinf", x); }

// ---- binary entry points ----------------------------------------------------------------------
#define KEEL_DEFINE_BINARY(name)                                                                  \
  Tensor name(const Tensor& a, const Tensor& b) {                                                 \
    check_operand_dtypes(BinaryOp::name, #name, a.dtype(), b.dtype());                            \
    return binary_recorded(BinaryOp::name, #name, a, b, result_type(a, b));                       \
  }                                                                                               \
  Tensor name(const Tensor& a, const Scalar& b) {                                                 \
    check_operand_dtypes(BinaryOp::name, #name, a.dtype(), b.natural_dtype());                    \
    const DType common = result_type(a, b);                                                       \
    check_scalar_operand(BinaryOp::name, #name, common, b);                                       \
    return binary_recorded(BinaryOp::name, #name, a, scalar_tensor(b, common, a.device()), common); \
  }                                                                                               \
  Tensor name(const Scalar& a, const Tensor& b) {                                                 \
    check_operand_dtypes(BinaryOp::name, #name, a.natural_dtype(), b.dtype());                    \
    const DType common = result_type(b, a);                                                       \
    return binary_recorded(BinaryOp::name, #name, scalar_tensor(a, common, b.device()), b, common); \
  }                                                                                               \
  Tensor& name##_(Tensor& a, const Tensor& b) {                                                   \
    check_operand_dtypes(BinaryOp::name, #name "_", a.dtype(), b.dtype());                        \
    return binary_recorded_(BinaryOp::name, #name "_", a, b, result_type(a, b));                  \
  }                                                                                               \
  Tensor& name##_(Tensor& a, const Scalar& b) {                                                   \
    check_operand_dtypes(BinaryOp::name, #name "_", a.dtype(), b.natural_dtype());                \
    const DType common = result_type(a, b);                                                       \
    check_scalar_operand(BinaryOp::name, #name "_", common, b);                                   \
    return binary_recorded_(BinaryOp::name, #name "_", a, scalar_tensor(b, common, a.device()), common); \
  }
KEEL_DEFINE_BINARY(add)
KEEL_DEFINE_BINARY(sub)
KEEL_DEFINE_BINARY(mul)
KEEL_DEFINE_BINARY(div)
KEEL_DEFINE_BINARY(pow)
KEEL_DEFINE_BINARY(maximum)
KEEL_DEFINE_BINARY(minimum)
KEEL_DEFINE_BINARY(eq)
KEEL_DEFINE_BINARY(ne)
KEEL_DEFINE_BINARY(lt)
KEEL_DEFINE_BINARY(le)
KEEL_DEFINE_BINARY(gt)
KEEL_DEFINE_BINARY(ge)
KEEL_DEFINE_BINARY(logical_and)
KEEL_DEFINE_BINARY(logical_or)
KEEL_DEFINE_BINARY(logical_xor)
#undef KEEL_DEFINE_BINARY

// ---- where and clamp ----------------------------------------------------------------------------
//   where(c, a, b):  da = dy where c (else 0), db = dy where !c; summed back to each shape
//   clamp(x, lo, hi): dx = dy where lo <= x <= hi; dlo = dy where x < lo (and lo < hi);
//                     dhi = dy where x > hi (or hi < lo)                          (PyTorch's rules)
namespace {
Tensor where_forward(const Tensor& condition, const Tensor& a, const Tensor& b) {
  KEEL_CHECK(condition.dtype() == DType::bool_, "[where] condition must be bool, got ",
             dtype_name(condition.dtype()));
  check_same_device("where", condition, a);
  check_same_device("where", a, b);
  const DType common = result_type(a, b);
  const Shape shape = broadcast_shapes(condition.shape(), broadcast_shapes(a.shape(), b.shape(), "where"), "where");
  Tensor out = empty(shape, {common, a.device()});
  const Tensor c = prepare(condition, DType::bool_, shape);
  const Tensor x = prepare(a, common, shape), y = prepare(b, common, shape);
  if (out.is_cuda()) cuda::where(out, c, x, y);
  else cpu::where(out, c, x, y);
  return out;
}
}  // namespace

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  OpRecord record("where", a, b);
  record.trace_attr("condition", condition);
  Tensor out = where_forward(condition, a, b);
  if (record) {
    record.finish({out}, {condition}, [a_shape = a.shape(), b_shape = b.shape()](const VjpArgs& args) {
      const Tensor& c = args.saved[0];
      return TensorList{args.needs(0) ? sum_to_size(where(c, args.grad(), 0), a_shape) : Tensor(),
                        args.needs(1) ? sum_to_size(where(c, 0, args.grad()), b_shape) : Tensor()};
    });
  }
  return out;
}
Tensor where(const Tensor& condition, const Tensor& a, const Scalar& b) {
  return where(condition, a, scalar_tensor(b, result_type(a, b), a.device()));
}
Tensor where(const Tensor& condition, const Scalar& a, const Tensor& b) {
  return where(condition, scalar_tensor(a, result_type(b, a), b.device()), b);
}
Tensor where(const Tensor& condition, const Scalar& a, const Scalar& b) {
  ResultTypeState state;
  state.add(a);
  state.add(b);
  const DType common = state.result();
  return where(condition, scalar_tensor(a, common, condition.device()), scalar_tensor(b, common, condition.device()));
}

namespace {
Tensor clamp_impl(const Tensor& x, const Tensor& low, const Tensor& high, Tensor* in_place) {
  KEEL_CHECK(low.defined() || high.defined(), "[clamp] at least one of min and max must be given");
  KEEL_CHECK(x.dtype() != DType::bool_, "[clamp] not supported for bool tensors");
  ResultTypeState state;
  state.add(x);
  Shape shape = x.shape();
  for (const Tensor* bound : {&low, &high}) {
    if (!bound->defined()) continue;
    check_same_device("clamp", x, *bound);
    state.add(*bound);
    shape = broadcast_shapes(shape, bound->shape(), "clamp");
  }
  const DType common = state.result();
  const Tensor low_c = low.defined() ? prepare(low, common, shape) : Tensor();
  const Tensor high_c = high.defined() ? prepare(high, common, shape) : Tensor();
  Tensor out;
  if (in_place) {
    check_in_place_shape("clamp_", *in_place, shape);
    check_in_place_cast("clamp_", common, x.dtype());
    check_no_internal_overlap(*in_place, "clamp_");
  }
  if (in_place && common == x.dtype()) {
    out = *in_place;
  } else {
    out = empty(shape, {common, x.device()});
  }
  const Tensor input = prepare(x, common, shape);
  // Bounds that are views of the output must be read before it is overwritten.
  const Tensor low_read = low_c.defined() ? unaliased_input(low_c, out) : low_c;
  const Tensor high_read = high_c.defined() ? unaliased_input(high_c, out) : high_c;
  if (out.is_cuda()) cuda::clamp(out, input, low_read, high_read);
  else cpu::clamp(out, input, low_read, high_read);
  if (in_place) {
    if (!out.is_same(*in_place)) in_place->copy_(out);
    in_place->bump_version();
    return *in_place;
  }
  return out;
}

// A scalar bound as a 0-dim tensor whose dtype lets result_type treat it like a Python number.
Tensor bound_tensor(const Scalar& bound, const Tensor& x) {
  return scalar_tensor(bound, result_type(x, bound), x.device());
}


Tensor clamp_recorded(const Tensor& x, const Tensor& low, const Tensor& high) {
  OpRecord record("clamp", x, low, high);
  Tensor out = clamp_impl(x, low, high, nullptr);
  if (record) {
    record.finish({out}, {x, low, high}, [x_shape = x.shape(), low_shape = low.defined() ? low.shape() : Shape(),
                                          high_shape = high.defined() ? high.shape() : Shape()](const VjpArgs& args) {
      const Tensor &g = args.grad(), &x = args.saved[0], &low = args.saved[1], &high = args.saved[2];
      TensorList grads(3);
      if (args.needs(0)) {
        Tensor inside = low.defined() ? ge(x, low) : Tensor();
        if (high.defined()) inside = inside.defined() ? logical_and(inside, le(x, high)) : le(x, high);
        grads[0] = sum_to_size(where(inside, g, 0), x_shape);
      }
      if (args.needs(1)) {
        Tensor below = lt(x, low);
        if (high.defined()) below = logical_and(below, lt(low, high));
        grads[1] = sum_to_size(where(below, g, 0), low_shape);
      }
      if (args.needs(2)) {
        Tensor above = gt(x, high);
        if (low.defined()) above = logical_or(above, lt(high, low));
        grads[2] = sum_to_size(where(above, g, 0), high_shape);
      }
      return grads;
    });
  }
  return out;
}
}  // namespace

Tensor clamp(const Tensor& x, const Scalar& min, const Scalar& max) {
  return clamp_recorded(x, bound_tensor(min, x), bound_tensor(max, x));
}
Tensor clamp_min(const Tensor& x, const Scalar& min) { return clamp_recorded(x, bound_tensor(min, x), Tensor()); }
Tensor clamp_max(const Tensor& x, const Scalar& max) { return clamp_recorded(x, Tensor(), bound_tensor(max, x)); }
Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max) { return clamp_recorded(x, min, max); }
Tensor& clamp_(Tensor& x, const Scalar& min, const Scalar& max) {
  if (autograd::in_place_records("clamp_", x)) {
    return autograd::in_place_with_history("clamp_", x, [&](const Tensor& old) {
      return clamp_recorded(old, bound_tensor(min, old), bound_tensor(max, old));
    });
  }
  clamp_impl(x, bound_tensor(min, x), bound_tensor(max, x), &x);
  return x;
}

// ---- operators ----------------------------------------------------------------------------------
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, const Scalar& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Scalar& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Scalar& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Scalar& b) { return div(a, b); }
Tensor operator+(const Scalar& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Scalar& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Scalar& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Scalar& a, const Tensor& b) { return div(a, b); }
Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
Tensor operator==(const Tensor& a, const Scalar& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Scalar& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Scalar& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Scalar& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Scalar& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Scalar& b) { return ge(a, b); }
Tensor operator&&(const Tensor& a, const Tensor& b) { return logical_and(a, b); }
Tensor operator||(const Tensor& a, const Tensor& b) { return logical_or(a, b); }
Tensor operator!(const Tensor& x) { return logical_not(x); }

Tensor& Tensor::operator+=(const Tensor& other) { return add_(*this, other); }
Tensor& Tensor::operator-=(const Tensor& other) { return sub_(*this, other); }
Tensor& Tensor::operator*=(const Tensor& other) { return mul_(*this, other); }
Tensor& Tensor::operator/=(const Tensor& other) { return div_(*this, other); }
Tensor& Tensor::operator+=(const Scalar& other) { return add_(*this, other); }
Tensor& Tensor::operator-=(const Scalar& other) { return sub_(*this, other); }
Tensor& Tensor::operator*=(const Scalar& other) { return mul_(*this, other); }
Tensor& Tensor::operator/=(const Scalar& other) { return div_(*this, other); }

}  // namespace keel
