// gradcheck (first and second order, float64 central differences) for every differentiable op
// of the tensor core: elementwise, where/clamp, reductions, views, shape ops, copies and the
// in-place variants. Inputs are odd-sized, and each op is also checked on a non-contiguous
// (transposed or strided) input and, where it broadcasts, on broadcast operands. Ops with kinks
// (abs, relu, max, clamp, ...) are checked on inputs kept away from the kink.
#include <catch2/catch.hpp>

#include <cmath>

#include "test_util.h"

using namespace keel;
using autograd::GradcheckOptions;
using autograd::TensorList;

namespace {

// Values in [low, high], float64, requiring grad; `layout` 1 gives a transposed view, 2 a
// strided slice, 0 a contiguous tensor.
Tensor input(Shape shape, double low = -1.0, double high = 1.0, int layout = 0, uint64_t seed = 1) {
  Generator generator(seed);
  Tensor values;
  if (layout == 1 && shape.size() == 2) {
    values = (rand({shape[1], shape[0]}, {DType::f64}, &generator) * (high - low) + low).t();
  } else if (layout == 2 && !shape.empty()) {
    Shape wide = shape;
    wide.back() = wide.back() * 2;
    values = (rand(wide, {DType::f64}, &generator) * (high - low) + low).slice(-1, 0, wide.back(), 2);
  } else {
    values = rand(shape, {DType::f64}, &generator) * (high - low) + low;
  }
  return values.detach().requires_grad_();
}

// Away from a kink at 0: |x| in [0.2, 1.2] with random signs.
Tensor away_from_zero(Shape shape, int layout = 0, uint64_t seed = 2) {
  Tensor magnitude = input(shape, 0.2, 1.2, layout, seed).detach();
  Tensor sign = where(gt(rand(magnitude.shape(), {DType::f64}), 0.5), 1.0, -1.0);
  // Keep the layout of magnitude: multiply in place inside a no-grad scope.
  NoGradGuard no_grad;
  mul_(magnitude, sign);
  return magnitude.requires_grad_();
}

void check_both_orders(const std::string& name, const autograd::SingleOutputFn& fn, const TensorList& inputs,
                       GradcheckOptions options = {}) {
  INFO("op: " << name);
  CHECK_NOTHROW(autograd::gradcheck(fn, inputs, options));
  CHECK_NOTHROW(autograd::gradgradcheck(fn, inputs, options));
}

}  // namespace

TEST_CASE("unary elementwise vjps", "[autograd][vjp]") {
  struct Case {
    std::string name;
    std::function<Tensor(const Tensor&)> fn;
    double low, high;
    bool kink_at_zero;
  };
  const std::vector<Case> cases = {
      {"neg", [](const Tensor& x) { return neg(x); }, -1, 1, false},
      {"abs", [](const Tensor& x) { return abs(x); }, -1, 1, true},
      {"exp", [](const Tensor& x) { return exp(x); }, -1, 1, false},
      {"log", [](const Tensor& x) { return log(x); }, 0.3, 2, false},
      {"log1p", [](const Tensor& x) { return log1p(x); }, -0.5, 2, false},
      {"expm1", [](const Tensor& x) { return expm1(x); }, -1, 1, false},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.3, 2, false},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, 0.3, 2, false},
      {"sin", [](const Tensor& x) { return sin(x); }, -2, 2, false},
      {"cos", [](const Tensor& x) { return cos(x); }, -2, 2, false},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -2, 2, false},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -3, 3, false},
      {"relu", [](const Tensor& x) { return relu(x); }, -1, 1, true},
      {"gelu", [](const Tensor& x) { return gelu(x); }, -3, 3, false},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, GeluApproximation::tanh); }, -3, 3, false},
      {"silu", [](const Tensor& x) { return silu(x); }, -3, 3, false},
      {"erf", [](const Tensor& x) { return erf(x); }, -2, 2, false},
  };
  for (const Case& c : cases) {
    for (int layout : {0, 1, 2}) {
      INFO("layout " << layout);
      const Tensor x = c.kink_at_zero ? away_from_zero({3, 5}, layout) : input({3, 5}, c.low, c.high, layout);
      check_both_orders(c.name, [&](const TensorList& in) { return c.fn(in[0]); }, {x});
    }
  }
  // Empty tensors: the vjp runs and returns an empty gradient.
  Tensor empty_x = input({0, 3});
  sum(exp(empty_x)).backward();
  CHECK(empty_x.grad().shape() == Shape{0, 3});
}

TEST_CASE("binary elementwise vjps with broadcasting and scalars", "[autograd][vjp]") {
  struct Case {
    std::string name;
    std::function<Tensor(const Tensor&, const Tensor&)> fn;
    double low_b, high_b;
  };
  const std::vector<Case> cases = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, -1, 1},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, -1, 1},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, -1, 1},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, 0.5, 2},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(abs(a) + 0.5, b); }, -1.5, 1.5},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }, -1, 1},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }, -1, 1},
  };
  for (const Case& c : cases) {
    // Same shape, non-contiguous, and broadcasting [3, 1, 5] x [4, 1] -> [3, 4, 5].
    check_both_orders(c.name, [&](const TensorList& in) { return c.fn(in[0], in[1]); },
                      {input({3, 5}), input({3, 5}, c.low_b, c.high_b, 1, 7)});
    check_both_orders(c.name + " broadcast", [&](const TensorList& in) { return c.fn(in[0], in[1]); },
                      {input({3, 1, 5}), input({4, 1}, c.low_b, c.high_b, 0, 9)});
  }
  // Scalar operands on either side.
  check_both_orders("scalar ops", [](const TensorList& in) {
    return add(mul(sub(2.0, in[0]), 3.0), div(1.5, in[0] + 3.0)) - pow(in[0] + 2.0, 2.5) + pow(2.0, in[0]);
  }, {input({3, 5})});
  // The operator forms (+ - * / and unary -) record the same ops.
  check_both_orders("operators", [](const TensorList& in) { return -(in[0] * in[1] + in[0] / (in[1] + 3.0)); },
                    {input({2, 3}), input({3}, 0.5, 1.0)});
}

TEST_CASE("pow at zero and maximum on ties follow PyTorch's gradient conventions", "[autograd][vjp]") {
  // d/da a^0 = 0 (not 0 * a^-1 = nan at a = 0); d/db 0^b = 0 for b >= 0.
  Tensor a = tensor({0.0, 0.0, 2.0}, DType::f64).requires_grad_();
  Tensor b = tensor({0.0, 2.0, 3.0}, DType::f64).requires_grad_();
  sum(pow(a, b)).backward();
  Tensor ga = a.grad(), gb = b.grad();
  CHECK(ga.select(0, 0).item<double>() == 0.0);
  CHECK(ga.select(0, 1).item<double>() == 0.0);
  CHECK(ga.select(0, 2).item<double>() == Approx(12.0));
  CHECK(gb.select(0, 0).item<double>() == 0.0);
  CHECK(gb.select(0, 1).item<double>() == 0.0);
  CHECK(gb.select(0, 2).item<double>() == Approx(8.0 * std::log(2.0)));
  // maximum on a tie: half of the gradient each (as torch.maximum).
  Tensor x = tensor({1.0, 2.0}, DType::f64).requires_grad_(), y = tensor({1.0, 3.0}, DType::f64).requires_grad_();
  sum(maximum(x, y)).backward();
  CHECK(x.grad().select(0, 0).item<double>() == 0.5);
  CHECK(x.grad().select(0, 1).item<double>() == 0.0);
  CHECK(y.grad().select(0, 0).item<double>() == 0.5);
  CHECK(y.grad().select(0, 1).item<double>() == 1.0);
}

TEST_CASE("where and clamp vjps", "[autograd][vjp]") {
  const Tensor condition = gt(rand({3, 4, 5}, {DType::f64}), 0.5);
  check_both_orders("where", [&](const TensorList& in) { return where(condition, in[0], in[1]); },
                    {input({4, 1}), input({3, 1, 5}, -1, 1, 0, 3)});
  check_both_orders("where scalar", [&](const TensorList& in) { return where(condition, in[0], 0.5); },
                    {input({3, 4, 5})});
  // Values kept away from the bounds +-0.5.
  Tensor x = away_from_zero({3, 5}, 1);
  {
    NoGradGuard no_grad;
    x = where(lt(abs(x), 0.6), x * 0.5, x).detach().requires_grad_();  // |x| in [0.1, 0.3] or [0.6, 1.2]
  }
  check_both_orders("clamp", [](const TensorList& in) { return clamp(in[0], -0.5, 0.5); }, {x});
  check_both_orders("clamp_min", [](const TensorList& in) { return clamp_min(in[0], 0.45); }, {x});
  check_both_orders("clamp_max", [](const TensorList& in) { return clamp_max(in[0], -0.45); }, {x});
  // Tensor bounds get gradients too; bounds broadcast.
  Tensor low = tensor({-0.5, 0.45, -2.0, -0.45, 0.5}, DType::f64).requires_grad_();
  Tensor high = tensor({{0.5}, {0.7}, {2.0}}, DType::f64).requires_grad_();
  Tensor values = (away_from_zero({3, 5}) * 1.3).detach().requires_grad_();
  check_both_orders("clamp tensor bounds", [](const TensorList& in) { return clamp(in[0], in[1], in[2]); },
                    {values, low, high});
}

TEST_CASE("reduction vjps", "[autograd][vjp]") {
  for (int layout : {0, 1}) {
    INFO("layout " << layout);
    const Tensor x = input({3, 5}, -1, 1, layout);
    check_both_orders("sum", [](const TensorList& in) { return sum(in[0]); }, {x});
    check_both_orders("sum dim", [](const TensorList& in) { return sum(in[0], {1}); }, {x});
    check_both_orders("sum keepdim", [](const TensorList& in) { return sum(in[0], {0}, true); }, {x});
    check_both_orders("mean", [](const TensorList& in) { return mean(in[0], {-1}); }, {x});
    check_both_orders("var", [](const TensorList& in) { return var(in[0], {1}); }, {x});
    check_both_orders("var correction 0", [](const TensorList& in) { return var(in[0], {0}, 0, true); }, {x});
    check_both_orders("std", [](const TensorList& in) { return keel::std(in[0], {1}); }, {x});
    check_both_orders("logsumexp", [](const TensorList& in) { return logsumexp(in[0], {1}); }, {x});
    check_both_orders("logsumexp all", [](const TensorList& in) { return logsumexp(in[0], {0, 1}); }, {x});
    const Tensor nonzero = away_from_zero({3, 5}, layout);
    check_both_orders("prod", [](const TensorList& in) { return prod(in[0], {1}); }, {nonzero});
    check_both_orders("norm 2", [](const TensorList& in) { return norm(in[0], 2, {1}); }, {nonzero});
    check_both_orders("norm 1", [](const TensorList& in) { return norm(in[0], 1, {0}); }, {nonzero});
    check_both_orders("norm 3", [](const TensorList& in) { return norm(in[0], 3); }, {nonzero});
    check_both_orders("norm 0.5", [](const TensorList& in) { return norm(in[0], 0.5, {1}); }, {nonzero});
    check_both_orders("norm inf", [](const TensorList& in) { return norm(in[0], INFINITY, {1}); }, {nonzero});
    // Distinct values: the extremes are unique, away from ties.
    check_both_orders("amax", [](const TensorList& in) { return amax(in[0], {1}); }, {x});
    check_both_orders("amin", [](const TensorList& in) { return amin(in[0], {0}, true); }, {x});
    check_both_orders("max all", [](const TensorList& in) { return max(in[0]); }, {x});
    check_both_orders("min all", [](const TensorList& in) { return min(in[0]); }, {x});
    check_both_orders("max dim", [](const TensorList& in) { return max(in[0], 1).values; }, {x});
    check_both_orders("min dim keepdim", [](const TensorList& in) { return min(in[0], 0, true).values; }, {x});
  }
  // prod with zeros: one zero in a row gets the product of the others, two zeros give 0.
  Tensor z = tensor({{0.0, 2.0, 3.0}, {0.0, 0.0, 4.0}, {1.0, 2.0, 3.0}}, DType::f64).requires_grad_();
  sum(prod(z, {1})).backward();
  const std::vector<double> expected = {6, 0, 0, 0, 0, 0, 6, 3, 2};
  Tensor g = z.grad().reshape({-1});
  for (int i = 0; i < 9; ++i) CHECK(g.select(0, i).item<double>() == expected[i]);
  check_both_orders("prod with zeros", [](const TensorList& in) { return prod(in[0], {1}); },
                    {tensor({{0.0, 2.0, 3.0}, {0.5, 0.25, 4.0}}, DType::f64).requires_grad_()});
  // Ties in amax share the gradient (as torch.amax).
  Tensor t = tensor({1.0, 3.0, 3.0}, DType::f64).requires_grad_();
  amax(t).backward();
  CHECK(t.grad().select(0, 1).item<double>() == 0.5);
  CHECK(t.grad().select(0, 2).item<double>() == 0.5);
  // Norm 2 at the zero vector: gradient 0, not nan (as PyTorch).
  Tensor zero = zeros({3}, {DType::f64}).requires_grad_();
  norm(zero).backward();
  CHECK(sum(zero.grad()).item<double>() == 0.0);
}

TEST_CASE("view vjps", "[autograd][vjp]") {
  const Tensor x = input({3, 4}, -1, 1, 1);
  check_both_orders("view", [](const TensorList& in) { return in[0].contiguous().view({2, 6}) * 1.5; }, {x});
  check_both_orders("reshape", [](const TensorList& in) { return in[0].reshape({4, 3}) * 1.5; }, {x});
  check_both_orders("permute", [](const TensorList& in) { return in[0].unsqueeze(1).permute({2, 0, 1}) * 2; }, {x});
  check_both_orders("transpose", [](const TensorList& in) { return in[0].transpose(0, 1) * in[0].t(); },
                    {input({3, 3}, -1, 1, 2)});
  check_both_orders("slice step", [](const TensorList& in) { return in[0].slice(1, 1, 4, 2) * 3; }, {x});
  check_both_orders("narrow", [](const TensorList& in) { return in[0].narrow(0, 1, 2) * 3; }, {x});
  check_both_orders("select", [](const TensorList& in) { return in[0].select(1, -1) * 3; }, {x});
  check_both_orders("expand", [](const TensorList& in) { return in[0].unsqueeze(0).expand({2, 3, 4}) * 3; }, {x});
  check_both_orders("squeeze", [](const TensorList& in) { return in[0].unsqueeze(2).squeeze(2) * 3; }, {x});
  check_both_orders("squeeze all", [](const TensorList& in) { return in[0].view({1, 12, 1}).squeeze() * 3; },
                    {input({3, 4})});
  check_both_orders("flatten", [](const TensorList& in) { return in[0].flatten() * 3; }, {x});
  check_both_orders("unflatten", [](const TensorList& in) { return in[0].flatten().unflatten(0, {2, 6}) * 3; }, {x});
  check_both_orders("as_strided", [](const TensorList& in) {
    return in[0].as_strided({2, 2}, {3, 1}, in[0].offset() + 1) * 3;
  }, {input({12})});
  check_both_orders("alias", [](const TensorList& in) { return in[0].alias() * 3; }, {x});
}

TEST_CASE("shape op vjps", "[autograd][vjp]") {
  const Tensor a = input({2, 3}), b = input({4, 3}, -1, 1, 0, 5), c = input({3, 2}, -1, 1, 1, 6);
  check_both_orders("cat", [](const TensorList& in) { return cat({in[0], in[1], in[2].t()}, 0) * 2; }, {a, b, c});
  check_both_orders("stack", [](const TensorList& in) { return stack({in[0], in[1].t()}, 1) * 2; },
                    {a, input({3, 2}, -1, 1, 0, 8)});
  check_both_orders("split", [](const TensorList& in) {
    std::vector<Tensor> parts = split(in[0], {1, 3}, 0);
    return sum(parts[0]) * 2 + parts[1] * 3;
  }, {b});
  check_both_orders("chunk", [](const TensorList& in) { return chunk(in[0], 3, 1)[1] * 2; }, {b});
  const Tensor index = tensor({{0, 2, 1}, {3, 3, 0}}, DType::i64);
  check_both_orders("gather", [&](const TensorList& in) { return gather(in[0], 0, index); }, {b});
  check_both_orders("scatter", [&](const TensorList& in) { return scatter(in[0], 0, index, in[1]); },
                    {b, input({2, 3}, -1, 1, 0, 11)});
  // scatter with a source larger than the index, and with a value.
  const Tensor small_index = tensor({{1}, {2}}, DType::i64);
  check_both_orders("scatter larger source", [&](const TensorList& in) {
    return scatter(in[0], 1, small_index, in[1]);
  }, {input({2, 3}), input({2, 3}, -1, 1, 0, 12)});
  check_both_orders("scatter value", [&](const TensorList& in) { return scatter(in[0], 0, index, 0.5); }, {b});
  check_both_orders("scatter_add", [&](const TensorList& in) { return scatter_add(in[0], 0, index, in[1]); },
                    {b, input({2, 3}, -1, 1, 0, 13)});
  check_both_orders("index_select", [](const TensorList& in) {
    return index_select(in[0], 0, tensor({3, 0, 3}, DType::i64)) * 2;
  }, {b});
  check_both_orders("index_select dim 1 i32", [](const TensorList& in) {
    return index_select(in[0], 1, tensor({2, 2}, DType::i32)) * 2;
  }, {input({3, 4}, -1, 1, 1)});
  const Tensor mask = tensor({true, false, true}, DType::bool_);
  check_both_orders("masked_fill", [&](const TensorList& in) { return masked_fill(in[0], mask, 2.0); }, {b});
  check_both_orders("tril", [](const TensorList& in) { return tril(in[0], -1); }, {input({4, 4}, -1, 1, 1)});
  check_both_orders("triu", [](const TensorList& in) { return triu(in[0], 1); }, {input({2, 3, 4})});
  check_both_orders("slice_scatter", [](const TensorList& in) { return slice_scatter(in[0], in[1], 1, 0, 3, 2); },
                    {input({2, 4}), input({2, 2}, -1, 1, 0, 14)});
}

TEST_CASE("copy and conversion vjps; in-place variants", "[autograd][vjp]") {
  const Tensor x = input({3, 4}, 0.2, 1, 1);
  check_both_orders("clone", [](const TensorList& in) { return in[0].clone() * in[0]; }, {x});
  check_both_orders("contiguous", [](const TensorList& in) { return in[0].contiguous() * 2; }, {x});
  // to(f32) loses precision: checked with a looser tolerance.
  check_both_orders("to f32 and back", [](const TensorList& in) { return in[0].to(DType::f32).to(DType::f64) * 2; },
                    {x}, {.eps = 1e-3, .atol = 1e-4, .rtol = 1e-3});
  check_both_orders("copy_", [](const TensorList& in) {
    Tensor buffer = zeros({2, 3, 4}, {DType::f64});
    buffer.copy_(in[0]);  // broadcasts
    return buffer * 2;
  }, {x});
  check_both_orders("in-place chain", [](const TensorList& in) {
    Tensor y = in[0] * 1;
    exp_(y);
    mul_(y, in[0]);
    add_(y, 2.0);
    clamp_(y, 0.0, 10.0);
    sqrt_(y);
    return y;
  }, {x});
  check_both_orders("in-place scatter and masked_fill", [](const TensorList& in) {
    Tensor y = in[0] * 1;
    scatter_add_(y, 0, tensor({{1, 0, 2, 2}}, DType::i64), in[1]);
    masked_fill_(y, tensor({true, false, false, true}, DType::bool_), 0.0);
    return y * y;
  }, {x, input({1, 4}, -1, 1, 0, 21)});
}

TEST_CASE("sign: values as torch 1.13 (NaN gives 0) and a zero gradient", "[autograd][vjp]") {
  Tensor x = tensor({std::nan(""), -0.0, 2.0, -3.0}, DType::f64).requires_grad_();
  Tensor s = sign(x);
  const std::vector<double> expected = {0, 0, 1, -1};
  for (int i = 0; i < 4; ++i) CHECK(s.select(0, i).item<double>() == expected[i]);
  sum(s).backward();
  CHECK(sum(abs(x.grad())).item<double>() == 0.0);
  CHECK(sign(tensor({3, -2, 0})).dtype() == DType::i64);
  CHECK(sign(tensor({3, -2, 0})).select(0, 1).item<int64_t>() == -1);
  CHECK(sign(tensor({true, false})).dtype() == DType::bool_);
}

TEST_CASE("in-place ops through views rewrite the base's history (first and second order)", "[autograd][vjp]") {
  check_both_orders("in-place through views", [](const TensorList& in) {
    Tensor y = in[0] * 1;
    Tensor row = y.select(0, 1);
    mul_(row, in[1]);                       // a row scaled by a tensor that requires grad
    Tensor every_other = y.slice(1, 0, 4, 2);
    add_(every_other, 1.0);                 // a strided view
    Tensor corner = y.slice(0, 0, 2).select(1, 3);
    exp_(corner);                           // a view of a view: its base is y
    Tensor transposed = y.t();
    mul_(transposed, transposed);           // the whole tensor through a transposed view
    return y * 2;
  }, {input({3, 4}), input({4}, -1, 1, 0, 31)});
  // A view taken before the in-place op follows the base's new history.
  check_both_orders("stale view", [](const TensorList& in) {
    Tensor y = in[0] * 2;
    Tensor first = y.select(0, 0);
    mul_(y, in[0]);
    return first * 3;
  }, {input({2, 3})});
}
