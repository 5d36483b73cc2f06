// The fused CPU kernels behind softmax, log_softmax, layer_norm and rms_norm (and their backward
// ops) against the float64 composites of the same ops (f64 inputs never take the fused path), on
// every instruction-set variant this machine runs (set_cpu_isa), odd sizes (1x1, 3x31, 7x33,
// 5x257, 2x1000, and 3x20000 for the chunked online softmax), f32/bf16/f16, non-contiguous and
// empty inputs, large magnitudes and -inf; gradcheck and gradgradcheck of the backward ops.
// The f32 fast-path gradients are compared with the f64 composite's gradients, which gradcheck
// checks against central differences.
#include <cmath>
#include <string>
#include <vector>

#include "keel/autograd/gradcheck.h"
#include "keel/kernels/cpu/cpu_features.h"
#include "test_util.h"

using namespace keel;
using namespace keel::test;
using autograd::TensorList;

namespace {

// Tolerances of a fused result of dtype d against the f64 composite: |a - e| <= atol * max|e| + rtol * |e|.
Tolerance fused_tolerance(DType d) {
  switch (d) {
    case DType::f32: return {2e-6, 2e-5};
    case DType::f16: return {2e-3, 4e-3};
    default: return {1e-2, 2e-2};  // bf16
  }
}

// floor: a scale for atol when the result itself is near 0 by cancellation (e.g. dx of one column).
void expect_close(const Tensor& actual, const Tensor& expected, Tolerance tol, const std::string& what,
                  double floor = 0.0) {
  INFO(what);
  REQUIRE(actual.defined());
  REQUIRE(actual.shape() == expected.shape());
  if (expected.numel() == 0) return;
  Tensor a = actual.to(DType::f64);
  Tensor e = expected.to(DType::f64);
  // NaN and inf must sit at the same places with the same values; the rest is compared below.
  CHECK(all(isnan(a) == isnan(e)).item<bool>());
  CHECK(all(where(isinf(e), a, 0.0) == where(isinf(e), e, 0.0)).item<bool>());
  const Tensor non_finite = isnan(e) || isinf(e);
  a = where(non_finite, 0.0, a);
  e = where(non_finite, 0.0, e);
  const double scale = std::max(floor, amax(abs(e)).item<double>());
  const Tensor excess = abs(a - e) - (tol.atol * scale + abs(e) * tol.rtol);
  const double worst = amax(excess).item<double>();
  if (!(worst <= 0.0)) {
    const int64_t at = argmax(excess.reshape({-1})).item<int64_t>();
    FAIL_CHECK("element " << at << ": got " << a.reshape({-1}).select(0, at).item<double>() << ", expected "
                          << e.reshape({-1}).select(0, at).item<double>() << " (scale " << scale << ")");
  }
}

int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t size : shape) n *= size;
  return n;
}

const std::vector<Shape> kRowShapes = {{1, 1}, {3, 31}, {7, 33}, {5, 257}, {2, 1000}};
const std::vector<DType> kFusedDTypes = {DType::f32, DType::bf16, DType::f16};

std::string describe(const std::string& isa, const Shape& shape, DType dtype) {
  return isa + " " + to_string(shape) + " " + std::string(dtype_name(dtype));
}

// Forward and x-gradient of softmax/log_softmax over `dim` of x (of dtype d) against f64.
// end_to_end: also compare x's gradient with the f64 chain; with 1e4-scale inputs log_softmax's
// gradient depends on exp(y) of a rounded y (as in PyTorch), so there only the backward op is
// compared, on the same y.
void check_softmax(const Tensor& x, int64_t dim, bool is_log, const std::string& what, bool end_to_end = true) {
  const DType d = x.dtype();
  const Tensor dy = random_tensor(x.shape(), d);
  const Tensor x_leaf = x.detach().requires_grad_();
  const Tensor y = is_log ? log_softmax(x_leaf, dim) : softmax(x_leaf, dim);
  y.backward(dy);
  const Tensor x64 = x.to(DType::f64).requires_grad_();
  const Tensor y64 = is_log ? log_softmax(x64, dim) : softmax(x64, dim);
  y64.backward(dy.to(DType::f64));
  const std::string name = std::string(is_log ? "log_softmax " : "softmax ") + what;
  CHECK(y.dtype() == d);
  expect_close(y, y64, fused_tolerance(d), name + " forward");
  // The gradient goes through y rounded to d: one more rounding than the forward.
  Tolerance grad_tol = fused_tolerance(d);
  grad_tol.atol *= 2;
  // dx is a difference of terms of size |y * dy| (for log_softmax |dy|): that is its natural scale
  // when it cancels to ~0 (a row with one dominant element).
  const Tensor dy64 = dy.to(DType::f64);
  const double floor = amax(abs(is_log ? dy64 : y64.detach() * dy64)).item<double>();
  if (end_to_end) expect_close(x_leaf.grad(), x64.grad(), grad_tol, name + " backward", floor);
  const Tensor y_same = y.detach().to(DType::f64);
  const Tensor dx_same = is_log ? log_softmax_backward(y_same, dy.to(DType::f64), dim)
                                : softmax_backward(y_same, dy.to(DType::f64), dim);
  expect_close(x_leaf.grad(), dx_same, fused_tolerance(d), name + " backward on the same y", floor);
}

// grad_slack widens the gradient tolerance: with a large mean the f32 mean saved for backward
// carries an absolute error of ulp(mean) / 2 into xhat (as in PyTorch).
void check_norm(const Tensor& x, const Shape& normalized_shape, bool centered, bool affine, const std::string& what,
                double grad_slack = 1.0) {
  const DType d = x.dtype();
  Tensor w, b, w64, b64;
  if (affine) {
    w = (random_tensor(normalized_shape, DType::f32) + 1.0).requires_grad_();
    w64 = w.detach().to(DType::f64).requires_grad_();
    if (centered) {
      b = random_tensor(normalized_shape, DType::f32).requires_grad_();
      b64 = b.detach().to(DType::f64).requires_grad_();
    }
  }
  const double eps = 1e-5;
  const Tensor dy = random_tensor(x.shape(), d);
  const Tensor x_leaf = x.detach().requires_grad_();
  const Tensor x64 = x.to(DType::f64).requires_grad_();
  const Tensor y = centered ? layer_norm(x_leaf, normalized_shape, w, b, eps) : rms_norm(x_leaf, normalized_shape, w, eps);
  const Tensor y64 = centered ? layer_norm(x64, normalized_shape, w64, b64, eps) : rms_norm(x64, normalized_shape, w64, eps);
  y.backward(dy);
  y64.backward(dy.to(DType::f64));
  const std::string name = std::string(centered ? "layer_norm " : "rms_norm ") + what + (affine ? " affine" : "");
  CHECK(y.dtype() == d);
  expect_close(y, y64, fused_tolerance(d), name + " forward");
  Tolerance grad_tol = fused_tolerance(d);
  grad_tol.atol *= 2 * grad_slack;
  // dx is a difference of terms of size |dy * w| * rstd: that is its natural scale.
  const Tensor x_flat = x.to(DType::f64).reshape({-1, numel_of(normalized_shape)});
  const Tensor centered_x = centered ? x_flat - mean(x_flat, {1}, true) : x_flat;
  const double rstd_max = amax(rsqrt(mean(centered_x * centered_x, {1}) + eps)).item<double>();
  const double g_max = amax(abs(dy.to(DType::f64))).item<double>() * (affine ? amax(abs(w)).item<double>() : 1.0);
  expect_close(x_leaf.grad(), x64.grad(), grad_tol, name + " dx", g_max * rstd_max);
  if (affine) {
    // dweight and dbias sum over rows in f32: the tolerance grows with the row count a little.
    expect_close(w.grad(), w64.grad(), grad_tol, name + " dweight");
    if (centered) expect_close(b.grad(), b64.grad(), grad_tol, name + " dbias");
  }
}

}  // namespace

TEST_CASE("fused softmax and log_softmax match the f64 composite on every ISA", "[fused][softmax]") {
  for (const std::string& isa : cpu_paths()) {
    CpuPathGuard guard(isa);
    for (DType d : kFusedDTypes) {
      for (const Shape& shape : kRowShapes) {
        const Tensor x = random_tensor(shape, d, -4, 4);
        for (bool is_log : {false, true}) check_softmax(x, -1, is_log, describe(isa, shape, d));
      }
      // Many rows: blocks of rows (a partial last one) split over both threads.
      const Tensor many = random_tensor({300, 129}, d, -4, 4);
      for (bool is_log : {false, true}) check_softmax(many, -1, is_log, describe(isa, {300, 129}, d));
      // Long rows take the chunked online path.
      const Tensor long_rows = random_tensor({3, 20000}, d, -8, 8);
      for (bool is_log : {false, true}) check_softmax(long_rows, 1, is_log, describe(isa, {3, 20000}, d));
      // Other dims, non-contiguous layouts, 1-D and 0-D.
      const Tensor x3 = random_tensor({4, 33, 5}, d);
      for (bool is_log : {false, true}) {
        check_softmax(x3, 1, is_log, describe(isa, {4, 33, 5}, d) + " dim 1");
        check_softmax(x3, 0, is_log, describe(isa, {4, 33, 5}, d) + " dim 0");
        check_softmax(non_contiguous(random_tensor({9, 31}, d)), -1, is_log, isa + " transposed");
        check_softmax(random_tensor({6, 70}, d).slice(1, 0, 70, 2), -1, is_log, isa + " strided");
        check_softmax(random_tensor({17}, d), 0, is_log, isa + " 1-D");
        check_softmax(random_tensor({}, d), 0, is_log, isa + " 0-D");
      }
    }
  }
}

TEST_CASE("fused softmax: large magnitudes, -inf, NaN and empty tensors", "[fused][softmax]") {
  for (const std::string& isa : cpu_paths()) {
    CpuPathGuard guard(isa);
    for (int64_t cols : {33, 20000}) {
      INFO(isa << " cols " << cols);
      // 1e4-scale values: exp of them overflows without the max shift.
      const Tensor x = random_tensor({4, cols}, DType::f32, -1e4, 1e4);
      for (bool is_log : {false, true}) check_softmax(x, -1, is_log, isa + " 1e4", false);
      const Tensor big = full({2, cols}, 1e4, {.dtype = DType::f32});
      const Tensor y = softmax(big, -1);
      expect_close(y, full({2, cols}, 1.0 / cols, {.dtype = DType::f64}), {0, 1e-5}, "equal 1e4 values");
      // -inf entries (masked attention) give 0; a row of only -inf gives NaN, as the composite.
      Tensor masked = random_tensor({3, cols}, DType::f32);
      masked.slice(1, 0, cols / 2).fill_(-INFINITY);
      const Tensor ym = softmax(masked, -1);
      CHECK(all(ym.slice(1, 0, cols / 2) == 0.0).item<bool>());
      expect_close(ym, softmax(masked.to(DType::f64), -1), fused_tolerance(DType::f32), "masked");
      expect_close(log_softmax(masked, -1).slice(1, cols / 2, cols),
                   log_softmax(masked.to(DType::f64), -1).slice(1, cols / 2, cols), fused_tolerance(DType::f32),
                   "masked log");
      const Tensor all_masked = full({2, cols}, -INFINITY, {.dtype = DType::f32});
      CHECK(all(isnan(softmax(all_masked, -1))).item<bool>());
      // A NaN anywhere in a row makes the row NaN (the composite's max and sum propagate it).
      Tensor with_nan = random_tensor({2, cols}, DType::f32);
      with_nan.select(0, 1).select(0, cols - 1).fill_(NAN);
      const Tensor yn = softmax(with_nan, -1);
      CHECK(all(isnan(yn.select(0, 1))).item<bool>());
      CHECK(!any(isnan(yn.select(0, 0))).item<bool>());
    }
    // bf16 rows take their max from integer compares on the bits (norms.isa.cpp, AVX-512): rows of
    // only negative values (a second, minimum pass), -inf masks, a -0.0 maximum, +NaN and -NaN.
    for (int64_t cols : {1, 33, 200}) {
      INFO(isa << " bf16 cols " << cols);
      const Tensor negative = random_tensor({5, cols}, DType::bf16, -9, -0.5);
      for (bool is_log : {false, true}) check_softmax(negative, -1, is_log, isa + " bf16 negative", false);
      Tensor masked = random_tensor({3, cols}, DType::bf16, -9, -0.5);
      masked.slice(1, 0, cols / 2).fill_(-INFINITY);
      masked.select(0, 2).select(0, cols - 1).fill_(-0.0);
      const Tensor ym = softmax(masked, -1);
      CHECK(all(ym.slice(1, 0, cols / 2) == 0.0).item<bool>());
      expect_close(ym, softmax(masked.to(DType::f64), -1), fused_tolerance(DType::bf16), "bf16 masked");
      expect_close(log_softmax(masked, -1).slice(1, cols / 2, cols),
                   log_softmax(masked.to(DType::f64), -1).slice(1, cols / 2, cols), fused_tolerance(DType::bf16),
                   "bf16 masked log");
      for (double nan : {double(NAN), -double(NAN)}) {
        Tensor with_nan = random_tensor({2, cols}, DType::bf16, -9, -0.5);
        with_nan.select(0, 1).select(0, cols / 2).fill_(nan);
        const Tensor yn = softmax(with_nan, -1);
        CHECK(all(isnan(yn.select(0, 1))).item<bool>());
        CHECK(!any(isnan(yn.select(0, 0))).item<bool>());
      }
    }
    for (const Shape& shape : std::vector<Shape>{{0, 5}, {5, 0}, {0}}) {
      INFO(to_string(shape));
      const Tensor e = empty(shape, {.dtype = DType::f32}).requires_grad_();
      const Tensor y = softmax(e, -1);
      CHECK(y.shape() == shape);
      y.backward(zeros(shape));
      CHECK(e.grad().shape() == shape);
      CHECK(softmax_backward(y.detach(), zeros(shape), -1).shape() == shape);
    }
  }
}

TEST_CASE("fused layer_norm and rms_norm match the f64 composite on every ISA", "[fused][norm]") {
  for (const std::string& isa : cpu_paths()) {
    CpuPathGuard guard(isa);
    for (DType d : kFusedDTypes) {
      for (const Shape& shape : kRowShapes) {
        const Tensor x = random_tensor(shape, d, -3, 3);
        for (bool centered : {true, false})
          for (bool affine : {false, true}) check_norm(x, {shape[1]}, centered, affine, describe(isa, shape, d));
      }
      for (bool centered : {true, false}) {
        // Two normalized dims, a transposed input, and a large mean (the variance is two-pass).
        check_norm(random_tensor({3, 5, 7}, d), {5, 7}, centered, true, describe(isa, {3, 5, 7}, d));
        check_norm(non_contiguous(random_tensor({6, 37}, d)), {37}, centered, true, isa + " transposed");
        check_norm(random_tensor({4, 300}, d) + 1000.0, {300}, centered, true, isa + " offset 1000", 10.0);
        check_norm(random_tensor({2, 5000}, d), {5000}, centered, true, isa + " long rows");
      }
      // First elements far from the row's mean: layer_norm's one-pass moments are taken around
      // x[0], so these rows need the second pass over (x - mean)^2 (norm_finish_row).
      {
        Tensor far = random_tensor({4, 300}, d);
        far.slice(1, 0, 1).fill_(400.0);
        check_norm(far, {300}, true, true, isa + " first element far from the mean");
      }
      // Many rows: the dweight/dbias partials of both threads are summed.
      check_norm(random_tensor({300, 129}, d), {129}, true, true, describe(isa, {300, 129}, d));
    }
    // Empty batches take the composite and give empty results.
    const Tensor e = empty({0, 8}, {.dtype = DType::f32}).requires_grad_();
    const Tensor w = ones({8}).requires_grad_();
    const Tensor y = layer_norm(e, {8}, w, zeros({8}));
    CHECK(y.shape() == Shape{0, 8});
    y.backward(zeros({0, 8}));
    CHECK(e.grad().shape() == Shape{0, 8});
    CHECK(rms_norm(e, {8}, w).shape() == Shape{0, 8});
  }
}

TEST_CASE("layer_norm_backward and rms_norm_backward ops: masks, fused against composite", "[fused][norm]") {
  const Tensor x = random_tensor({5, 33}, DType::f32);
  const Tensor dy = random_tensor({5, 33}, DType::f32);
  const Tensor w = random_tensor({33}, DType::f32);
  const Tensor mean_ = mean(x, {1}, true);
  const Tensor rstd = rsqrt(mean((x - mean_) * (x - mean_), {1}, true) + 1e-5);
  const NormGrads fused = layer_norm_backward(dy, x, mean_, rstd, w, {33});
  const NormGrads reference =
      layer_norm_backward(dy.to(DType::f64), x.to(DType::f64), mean_.to(DType::f64), rstd.to(DType::f64),
                          w.to(DType::f64), {33});
  expect_close(fused.dx, reference.dx, fused_tolerance(DType::f32), "dx");
  expect_close(fused.dweight, reference.dweight, fused_tolerance(DType::f32), "dweight");
  expect_close(fused.dbias, reference.dbias, fused_tolerance(DType::f32), "dbias");
  // Statistics as flat [rows] tensors work too; masks leave fields undefined.
  const NormGrads only_dx = layer_norm_backward(dy, x, mean_.reshape({5}), rstd.reshape({5}), w, {33},
                                                {.input = true, .weight = false, .bias = false});
  expect_close(only_dx.dx, reference.dx, fused_tolerance(DType::f32), "dx only");
  CHECK(!only_dx.dweight.defined());
  CHECK(!only_dx.dbias.defined());
  const Tensor rms_rstd = rsqrt(mean(x * x, {1}, true) + 1e-6);
  const NormGrads rms = rms_norm_backward(dy, x, rms_rstd, Tensor(), {33});
  const NormGrads rms64 =
      rms_norm_backward(dy.to(DType::f64), x.to(DType::f64), rms_rstd.to(DType::f64), Tensor(), {33});
  expect_close(rms.dx, rms64.dx, fused_tolerance(DType::f32), "rms dx");
  CHECK(!rms.dweight.defined());
  CHECK(!rms.dbias.defined());
  check_error([&] { layer_norm_backward(dy, x, mean_, rstd.slice(0, 0, 4), w, {33}); },
              {"[layer_norm_backward] rstd must have one value per row (5)"});
  check_error([&] { softmax_backward(x, dy.slice(1, 0, 30), -1); },
              {"[softmax_backward] y and dy must have one shape", "[5, 33]", "[5, 30]"});
}

TEST_CASE("backward ops pass gradcheck and gradgradcheck", "[fused][autograd]") {
  for (bool is_log : {false, true}) {
    INFO((is_log ? "log_softmax_backward" : "softmax_backward"));
    const Tensor x = random_tensor({3, 7}, DType::f64);
    const Tensor y = (is_log ? log_softmax(x, 1) : softmax(x, 1)).requires_grad_();
    const Tensor dy = random_tensor({3, 7}, DType::f64).requires_grad_();
    auto fn = [is_log](const TensorList& in) {
      return is_log ? log_softmax_backward(in[0], in[1], 1) : softmax_backward(in[0], in[1], 1);
    };
    CHECK(autograd::gradcheck(fn, {y, dy}));
    CHECK(autograd::gradgradcheck(fn, {y, dy}));
    // Along dim 0 and on a 0-D tensor too.
    auto fn0 = [is_log](const TensorList& in) {
      return is_log ? log_softmax_backward(in[0], in[1], 0) : softmax_backward(in[0], in[1], 0);
    };
    CHECK(autograd::gradcheck(fn0, {y, dy}));
    const Tensor y0 = random_tensor({}, DType::f64).requires_grad_();
    const Tensor dy0 = random_tensor({}, DType::f64).requires_grad_();
    CHECK(autograd::gradcheck(fn0, {y0, dy0}));
    // The forward ops to third order: their vjp is the backward op.
    auto forward = [is_log](const TensorList& in) { return is_log ? log_softmax(in[0], -1) : softmax(in[0], -1); };
    CHECK(autograd::gradgradcheck(forward, {x.detach().requires_grad_()}));
  }
  // layer_norm_backward with the statistics as independent inputs.
  const Tensor x = random_tensor({3, 6}, DType::f64).requires_grad_();
  const Tensor dy = random_tensor({3, 6}, DType::f64).requires_grad_();
  const Tensor mu = random_tensor({3, 1}, DType::f64).requires_grad_();
  const Tensor rstd = (random_tensor({3, 1}, DType::f64, 0.5, 2.0)).requires_grad_();
  const Tensor w = random_tensor({6}, DType::f64).requires_grad_();
  auto ln = [](const TensorList& in) {
    const NormGrads g = layer_norm_backward(in[0], in[1], in[2], in[3], in[4], {6});
    return TensorList{g.dx, g.dweight, g.dbias};
  };
  CHECK(autograd::gradcheck(ln, {dy, x, mu, rstd, w}));
  auto rms = [](const TensorList& in) {
    const NormGrads g = rms_norm_backward(in[0], in[1], in[2], in[3], {6});
    return TensorList{g.dx, g.dweight};
  };
  CHECK(autograd::gradcheck(rms, {dy, x, rstd, w}));
}

TEST_CASE("fused f32 gradients under create_graph equal the plain backward", "[fused][autograd]") {
  // create_graph takes the composite vjp; the plain backward takes the fused kernels.
  const Tensor x = random_tensor({4, 37}, DType::f32).requires_grad_();
  const Tensor w = random_tensor({37}, DType::f32).requires_grad_();
  const Tensor b = random_tensor({37}, DType::f32).requires_grad_();
  const Tensor dy = random_tensor({4, 37}, DType::f32);
  for (bool centered : {true, false}) {
    const Tensor y = centered ? layer_norm(x, {37}, w, b) : rms_norm(x, {37}, w);
    const TensorList plain = autograd::grad({y}, {x, w}, {dy}, {.retain_graph = true, .create_graph = false});
    const TensorList graph = autograd::grad({y}, {x, w}, {dy}, {.retain_graph = true, .create_graph = true});
    expect_close(plain[0], graph[0], {1e-6, 1e-5}, "dx");
    expect_close(plain[1], graph[1], {1e-6, 1e-5}, "dweight");
  }
}

TEST_CASE("16-bit storage gives the f32 computation rounded once", "[fused]") {
  // bf16/f16 rows are read into f32 lanes and written back rounded to nearest even, so the result
  // is bit for bit the f32 kernel's on the widened input, rounded by the scalar conversions.
  for (const std::string& isa : cpu_paths()) {
    CpuPathGuard guard(isa);
    for (DType d : {DType::bf16, DType::f16}) {
      for (const Shape& shape : std::vector<Shape>{{3, 31}, {5, 257}, {2, 20000}}) {
        INFO(isa << " " << to_string(shape) << " " << dtype_name(d));
        const Tensor x = random_tensor(shape, d, -6, 6);
        const Tensor x32 = x.to(DType::f32);
        const Tensor w = random_tensor({shape[1]}, DType::f32);
        // bf16 (AVX-512) sums its rows in another lane order (even and odd elements) and softmax's
        // exp is the coarse one (relative error < 1e-5): an f32 result near a bf16 rounding boundary
        // may round the other way, a few elements in a thousand; a rounding bug would change about
        // half of them (at least one element is allowed: 1% of [3, 31] rounds down to none, and the
        // former kernel also differed in one element there with other random data). f16 takes the
        // f32 arithmetic exactly.
        const int64_t allowed = d == DType::bf16 ? std::max<int64_t>(1, x.numel() / 100) : 0;
        auto differing = [](const Tensor& a, const Tensor& b) { return sum((a != b).to(DType::i64)).item<int64_t>(); };
        CHECK(differing(softmax(x, -1), softmax(x32, -1).to(d)) <= allowed);
        CHECK(differing(log_softmax(x, -1), log_softmax(x32, -1).to(d)) <= allowed);
        // layer_norm: where the compiler contracts a multiply-add into an FMA may differ between the
        // instantiations, which can move an f32 result across a rounding boundary now and then;
        // a rounding bug (truncation) would change about half of the elements.
        const Tensor differs = layer_norm(x, {shape[1]}, w, w) != layer_norm(x32, {shape[1]}, w, w).to(d);
        CHECK(sum(differs.to(DType::i64)).item<int64_t>() <= x.numel() / 100);
        CHECK(differing(rms_norm(x, {shape[1]}, w, 1e-6), rms_norm(x32, {shape[1]}, w, 1e-6).to(d)) <= allowed);
        const Tensor y = softmax(x, -1);
        const Tensor dy = random_tensor(shape, d);
        CHECK(differing(softmax_backward(y, dy, -1),
                        softmax_backward(y.to(DType::f32), dy.to(DType::f32), -1).to(d)) <= allowed);
      }
    }
  }
}
