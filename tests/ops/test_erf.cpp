// erf and exact GELU in f32 (math::erf_f32 of kernels/op_math.h, vectorized by the elementwise
// kernels of every instruction set) against the float64 reference, through every CPU path this
// machine runs; bf16/f16 storage, odd sizes, non-contiguous inputs; GELU's gradients.
#include <cmath>
#include <cstring>
#include <limits>

#include "keel/autograd/gradcheck.h"
#include "test_util.h"

using namespace keel;
using namespace keel::test;

namespace {

// Max error of f32 erf in ulps of the exact value (measured worst: see the sweep's INFO).
constexpr double kErfMaxUlp = 1.5;  // 1.02 with FMA (AVX2, AVX-512), 1.21 without

float bits_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}
uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

// |y - exact| in ulps of a float at `exact` (2^-149 below 2^-126).
double ulp_error(float y, double exact) {
  if (std::isnan(exact)) return std::isnan(y) ? 0.0 : INFINITY;
  if (std::isnan(y) || std::isinf(y)) return INFINITY;
  int exponent = 0;
  std::frexp(std::fabs(exact), &exponent);
  const double ulp = std::ldexp(1.0, std::max(exponent - 1, -126) - 23);
  return std::fabs(static_cast<double>(y) - exact) / ulp;
}

// fn over `inputs` as one contiguous f32 tensor (simd::erf), or (strided) as every other element
// of a buffer twice as long (the scalar math::erf_f32 of the strided loops).
std::vector<float> apply(const std::vector<float>& inputs, Tensor (*fn)(const Tensor&), bool strided = false) {
  const int64_t n = static_cast<int64_t>(inputs.size());
  Tensor x = from_blob(const_cast<float*>(inputs.data()), {n});
  if (strided) x = stack({x, zeros_like(x)}, 1).select(1, 0);
  REQUIRE(x.is_contiguous() == !strided);
  const Tensor y = fn(x).contiguous();
  REQUIRE(y.dtype() == DType::f32);
  return std::vector<float>(y.data_ptr<float>(), y.data_ptr<float>() + inputs.size());
}

Tensor erf_fn(const Tensor& x) { return erf(x); }
Tensor gelu_fn(const Tensor& x) { return gelu(x); }

// The inputs of the sweeps: every 131st float from 0 to 4.5 (every binade, subnormals too) and
// every float in [3.85, 4.05] (where the result reaches 1 and the clamp sits), both signs; a grid of
// step 2^-12 across [-12, 12]; the specials.
std::vector<float> sweep_inputs() {
  std::vector<float> inputs;
  auto both = [&](float v) {
    inputs.push_back(v);
    inputs.push_back(-v);
  };
  for (uint32_t bits = 0; bits <= float_bits(4.5f); bits += 131) both(bits_float(bits));
  for (uint32_t bits = float_bits(3.85f); bits <= float_bits(4.05f); ++bits) both(bits_float(bits));
  for (int step = -12 * 4096; step <= 12 * 4096; ++step) inputs.push_back(static_cast<float>(step) / 4096.0f);
  for (float v : {0.0f, 1.0f, 0.99999994f, 1.00000012f, 4.0f, 3.92f, 10.0f, 1e30f, std::numeric_limits<float>::max(),
                  std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min(), 1e-20f, 1e-40f})
    both(v);
  return inputs;
}

}  // namespace

TEST_CASE("f32 erf is within 1.5 ulp of erf in double on every path", "[erf]") {
  const std::vector<float> inputs = sweep_inputs();
  std::vector<double> exact(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) exact[i] = reference::unary_value(UnaryOp::erf, inputs[i]);
  for (const std::string& path : cpu_paths()) {
    CpuPathGuard guard(path);
    for (const bool strided : {false, true}) {
      const std::vector<float> outputs = apply(inputs, &erf_fn, strided);
      double worst = 0.0;
      float worst_input = 0.0f;
      for (size_t i = 0; i < inputs.size(); ++i) {
        const double error = ulp_error(outputs[i], exact[i]);
        if (!(error <= worst)) {
          worst = error;
          worst_input = inputs[i];
        }
      }
      INFO("path " << path << (strided ? " strided" : " contiguous") << ", " << inputs.size() << " inputs; worst "
                   << worst << " ulp at x = " << std::hexfloat << worst_input);
      CHECK(worst <= kErfMaxUlp);
      CHECK(worst > 0.0);  // a sweep that compares the kernel with itself must not pass
    }
  }
}

TEST_CASE("f32 erf special values", "[erf]") {
  for (const std::string& path : cpu_paths()) {
    CpuPathGuard guard(path);
    INFO("path " << path);
    const std::vector<float> inputs = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 3.95f, -3.95f, 4.0f, 5.0f, -1e30f,
                                       std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest(),
                                       std::numeric_limits<float>::denorm_min(), -1e-39f};
    const std::vector<float> y = apply(inputs, &erf_fn);
    CHECK(float_bits(y[0]) == 0u);           // +0
    CHECK(float_bits(y[1]) == 0x80000000u);  // -0
    CHECK(y[2] == 1.0f);
    CHECK(y[3] == -1.0f);
    CHECK(std::isnan(y[4]));
    for (int k = 5; k < 12; ++k) CHECK(std::fabs(y[k]) == 1.0f);  // saturated exactly
    CHECK(y[6] == -1.0f);
    CHECK(y[12] > 0.0f);  // 2/sqrt(pi) * 2^-149 rounds to 2^-149
    CHECK(y[13] < 0.0f);
    CHECK(y[13] > -2e-39f);
  }
}

TEST_CASE("f32 exact gelu matches the float64 reference on every path", "[erf][gelu]") {
  // x/2 (1 + erf(x/sqrt 2)) in f32: erf's ~1 ulp near -1 cancels in 1 + erf for x < 0, so the
  // bound has an absolute part of |x| * 2^-24 besides a few ulps of the result.
  const std::vector<float> inputs = sweep_inputs();
  std::vector<double> exact_values(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) exact_values[i] = reference::unary_value(UnaryOp::gelu_erf, inputs[i]);
  for (const std::string& path : cpu_paths()) {
    CpuPathGuard guard(path);
    for (const bool strided : {false, true}) {
      const std::vector<float> outputs = apply(inputs, &gelu_fn, strided);
      double worst = 0.0;
      float worst_input = 0.0f;
      for (size_t i = 0; i < inputs.size(); ++i) {
        const double x = inputs[i];
        const double exact = exact_values[i];
        if (std::isnan(exact) || std::isinf(exact)) {
          CHECK(std::isnan(outputs[i]) == std::isnan(exact));
          if (std::isinf(exact)) CHECK(outputs[i] == static_cast<float>(exact));
          continue;
        }
        const double bound = 3.0 * std::fabs(exact) * 0x1p-24 + std::fabs(x) * 0x1p-24 + 0x1p-149;
        const double ratio = std::fabs(outputs[i] - exact) / bound;
        if (!(ratio <= worst)) {
          worst = ratio;
          worst_input = inputs[i];
        }
      }
      INFO("path " << path << (strided ? " strided" : " contiguous") << "; worst error / bound " << worst << " at x = "
                   << std::hexfloat << worst_input);
      CHECK(worst <= 1.0);
      CHECK(worst > 0.0);
    }
    const std::vector<float> special = apply({INFINITY, -INFINITY, NAN, 0.0f, -10.0f, 10.0f}, &gelu_fn);
    CHECK(special[0] == INFINITY);
    CHECK(std::isnan(special[1]));  // -inf * 0, as PyTorch
    CHECK(std::isnan(special[2]));
    CHECK(special[3] == 0.0f);
    CHECK(special[4] == 0.0f);
    CHECK(special[5] == 10.0f);
  }
}

TEST_CASE("erf and gelu on every dtype, odd sizes and strided views, every path", "[erf][gelu]") {
  for (const std::string& path : cpu_paths()) {
    CpuPathGuard guard(path);
    for (DType dtype : kFloatDTypes) {
      Tolerance tol = tolerance_for(dtype);
      if (dtype == DType::f32) tol = {2e-7, 4e-7};
      for (int64_t size : {1, 15, 16, 17, 31, 33, 257, 1031}) {
        const Tensor x = random_tensor({3, size}, dtype, -6.0, 6.0);
        const std::string what = path + " " + std::string(dtype_name(dtype)) + " size " + std::to_string(size);
        const RefTensor ref_erf = reference::unary(UnaryOp::erf, reference::from_tensor(x));
        const RefTensor ref_gelu = reference::unary(UnaryOp::gelu_erf, reference::from_tensor(x));
        check_matches(erf(x), ref_erf, tol, what + " erf");
        check_matches(gelu(x), ref_gelu, tol, what + " gelu");
        check_matches(erf(non_contiguous(x)), ref_erf, tol, what + " erf non-contiguous");
        check_matches(gelu(non_contiguous(x)), ref_gelu, tol, what + " gelu non-contiguous");
        // A transposed view (column-major walk) and a stride-2 slice.
        const Tensor xt = x.transpose(0, 1);
        check_matches(gelu(xt), reference::unary(UnaryOp::gelu_erf, reference::from_tensor(xt)), tol,
                      what + " gelu transposed");
        const Tensor xs = x.slice(1, 0, size, 2);
        check_matches(erf(xs), reference::unary(UnaryOp::erf, reference::from_tensor(xs)), tol, what + " erf strided");
      }
    }
  }
}

TEST_CASE("gelu and erf gradients: gradcheck and gradgradcheck", "[erf][gelu]") {
  for (const std::string& path : cpu_paths()) {
    CpuPathGuard guard(path);
    const Tensor x = random_tensor({3, 7}, DType::f64, -4.0, 4.0).requires_grad_(true);
    CHECK(autograd::gradcheck([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {x}));
    CHECK(autograd::gradgradcheck([](const std::vector<Tensor>& in) { return gelu(in[0]); }, {x}));
    CHECK(autograd::gradcheck([](const std::vector<Tensor>& in) { return erf(in[0]); }, {x}));
    CHECK(autograd::gradgradcheck([](const std::vector<Tensor>& in) { return erf(in[0]); }, {x}));
  }
  // The f32 backward (the vjp of public ops, erf through erf_f32) against the exact derivative
  // Phi(x) + x phi(x).
  const Tensor x = random_tensor({1031}, DType::f32, -6.0, 6.0).requires_grad_(true);
  const Tensor y = gelu(x);
  autograd::backward({sum(y)});
  const RefTensor xr = reference::from_tensor(x.detach());
  RefTensor expected = xr;
  for (double& v : expected.values)
    v = 0.5 * std::erfc(-v / std::sqrt(2.0)) + v * std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI);
  check_matches(x.grad(), expected, {1e-6, 1e-6}, "gelu f32 backward");
}

TEST_CASE("gelu_backward: the fused kernel against the float64 derivative, every path and dtype", "[erf][gelu]") {
  auto expected_for = [](const Tensor& g, const Tensor& x) {
    RefTensor expected = reference::from_tensor(x);
    const RefTensor gr = reference::from_tensor(g);
    for (size_t i = 0; i < expected.values.size(); ++i) {
      const double v = expected.values[i];
      expected.values[i] =
          gr.values[i] * (0.5 * std::erfc(-v / std::sqrt(2.0)) + v * std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI));
    }
    return expected;
  };
  for (const std::string& path : cpu_paths()) {
    CpuPathGuard guard(path);
    for (DType dtype : kFloatDTypes) {
      Tolerance tol = tolerance_for(dtype);
      if (dtype == DType::f32) tol = {4e-7, 1e-6};
      for (int64_t size : {1, 15, 16, 17, 33, 257, 1031}) {
        const Tensor x = random_tensor({3, size}, dtype, -7.0, 7.0);
        const Tensor g = random_tensor({3, size}, dtype, -2.0, 2.0);
        const std::string what = path + " " + std::string(dtype_name(dtype)) + " size " + std::to_string(size);
        {
          autograd::NoGradGuard no_grad;  // the fused kernel
          check_matches(gelu_backward(g, x), expected_for(g, x), tol, what + " fused");
          const Tensor gn = non_contiguous(g), xn = non_contiguous(x);
          check_matches(gelu_backward(gn, xn), expected_for(g, x), tol, what + " fused non-contiguous");
          const Tensor xt = x.transpose(0, 1), gt = g.transpose(0, 1);
          check_matches(gelu_backward(gt, xt), expected_for(gt, xt), tol, what + " fused transposed");
        }
        check_matches(gelu_backward(g, x), expected_for(g, x), tol, what + " composite");  // grad mode on
      }
    }
    // Special values, as the composite gives them: NaN stays NaN, gelu'(+-inf) = inf * 0 = NaN
    // for the x phi(x) term, large |x| saturates to 1 and 0.
    autograd::NoGradGuard no_grad;
    const Tensor x = tensor({0.0f, -0.0f, NAN, 10.0f, -10.0f, 30.0f, -30.0f}, DType::f32);
    const Tensor fused = gelu_backward(ones_like(x), x);
    const float* d = fused.data_ptr<float>();
    CHECK(d[0] == 0.5f);
    CHECK(d[1] == 0.5f);
    CHECK(std::isnan(d[2]));
    CHECK(d[3] == 1.0f);
    CHECK(std::fabs(d[4]) < 1e-20f);
    CHECK(d[5] == 1.0f);
    CHECK(d[6] == 0.0f);
  }
}

TEST_CASE("gelu backward through autograd uses the fused kernel and stays twice differentiable", "[erf][gelu]") {
  // First order (no create_graph): the vjp runs gelu_backward's fused kernel; in f64 gradcheck
  // compares it with finite differences. Under create_graph it is the composite, so
  // gradgradcheck (and linear's gelu epilogue) differentiate it again.
  const Tensor x = random_tensor({5, 9}, DType::f64, -5.0, 5.0).requires_grad_(true);
  const Tensor w = random_tensor({4, 9}, DType::f64).requires_grad_(true);
  const Tensor b = random_tensor({4}, DType::f64).requires_grad_(true);
  auto fn = [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2], Activation::gelu); };
  CHECK(autograd::gradcheck(fn, {x, w, b}));
  CHECK(autograd::gradgradcheck(fn, {x, w, b}));
  const Tensor g = random_tensor({5, 9}, DType::f64).requires_grad_(true);
  CHECK(autograd::gradcheck([](const std::vector<Tensor>& in) { return gelu_backward(in[0], in[1]); }, {g, x}));
}
