// torch.nn.functional ops against float64 references written here as plain loops (softmax,
// log_softmax, layer_norm, rms_norm, dropout with a regenerated mask, embedding), on odd sizes,
// non-contiguous and empty inputs, dims -1/0, f32/f64/f16/bf16; a few values pasted from torch
// 1.13; gradcheck and gradgradcheck for every op; error messages.
#include <cmath>
#include <optional>

#include "keel/autograd/gradcheck.h"
#include "test_util.h"

using namespace keel;
using namespace keel::test;
using autograd::TensorList;
using reference::RefTensor;

namespace {

// ---- float64 references --------------------------------------------------------------------
// Splits `shape` around dim d: outer * size * inner elements, row-major.
struct Split {
  int64_t outer = 1, size = 1, inner = 1;
};
Split split_at(const Shape& shape, int64_t d) {
  Split s;
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
    if (i < d) s.outer *= shape[i];
    else if (i == d) s.size = shape[i];
    else s.inner *= shape[i];
  }
  return s;
}

RefTensor ref_softmax(const RefTensor& x, int64_t d, bool log) {
  RefTensor out{x.shape, std::vector<double>(x.values.size())};
  const Split s = split_at(x.shape, d);
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t i = 0; i < s.inner; ++i) {
      auto at = [&](int64_t j) { return (o * s.size + j) * s.inner + i; };
      double m = -INFINITY;
      for (int64_t j = 0; j < s.size; ++j) m = std::max(m, x.values[at(j)]);
      double total = 0;
      for (int64_t j = 0; j < s.size; ++j) total += std::exp(x.values[at(j)] - m);
      for (int64_t j = 0; j < s.size; ++j) {
        const double shifted = x.values[at(j)] - m;
        out.values[at(j)] = log ? shifted - std::log(total) : std::exp(shifted) / total;
      }
    }
  }
  return out;
}

// Normalizes each run of n trailing elements: layer_norm (centered) or rms_norm.
RefTensor ref_norm(const RefTensor& x, int64_t n, const std::vector<double>& weight, const std::vector<double>& bias,
                   double eps, bool centered) {
  RefTensor out{x.shape, std::vector<double>(x.values.size())};
  const int64_t rows = n == 0 ? 0 : x.numel() / n;
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = x.values.data() + r * n;
    double mu = 0;
    if (centered) {
      for (int64_t j = 0; j < n; ++j) mu += row[j];
      mu /= static_cast<double>(n);
    }
    double second_moment = 0;
    for (int64_t j = 0; j < n; ++j) second_moment += (row[j] - mu) * (row[j] - mu);
    second_moment /= static_cast<double>(n);
    const double rstd = 1.0 / std::sqrt(second_moment + eps);
    for (int64_t j = 0; j < n; ++j) {
      double y = (row[j] - mu) * rstd;
      if (!weight.empty()) y *= weight[j];
      if (!bias.empty()) y += bias[j];
      out.values[r * n + j] = y;
    }
  }
  return out;
}

RefTensor ref_of(const Tensor& x) { return reference::from_tensor(x); }
RefTensor ref_values(const Shape& shape, std::vector<double> values) { return {shape, std::move(values)}; }

// ---- gradcheck helpers ------------------------------------------------------------------------
Tensor leaf(const Shape& shape, double low = -2.0, double high = 2.0) {
  return random_tensor(shape, DType::f64, low, high).requires_grad_();
}
// A transposed (or strided) float64 leaf: a non-contiguous input for gradcheck.
Tensor non_contiguous_leaf(const Shape& shape) {
  return non_contiguous(random_tensor(shape, DType::f64)).requires_grad_();
}

void check_grads(const autograd::SingleOutputFn& fn, const TensorList& inputs, bool second_order = true) {
  CHECK(autograd::gradcheck(fn, inputs));
  if (second_order) CHECK(autograd::gradgradcheck(fn, inputs));
}

// Shapes and dims for the forward sweeps: odd sizes, dims -1 and 0, and a middle dim.
struct DimCase {
  Shape shape;
  int64_t dim;
};
const std::vector<DimCase> kDimCases = {
    {{1}, 0},        {{31}, -1},      {{33}, 0},         {{257}, -1},     {{1, 1}, -1},
    {{3, 257}, -1},  {{257, 3}, 0},   {{31, 33}, -1},    {{33, 31}, 0},   {{2, 33, 5}, 1},
    {{4, 1, 31}, -1}, {{5, 7, 3}, 0}, {{2, 3, 4, 5}, -2},
};

}  // namespace

// =============================================================================================
TEST_CASE("softmax and log_softmax match the float64 reference", "[nn_functional][softmax]") {
  for (DType dtype : kFloatDTypes) {
    for (const DimCase& c : kDimCases) {
      for (bool log : {false, true}) {
        const Tensor x = random_tensor(c.shape, dtype, -4.0, 4.0);
        const int64_t d = c.dim < 0 ? c.dim + static_cast<int64_t>(c.shape.size()) : c.dim;
        const RefTensor expected = ref_softmax(ref_of(x), d, log);
        for (const Tensor& input : {x, non_contiguous(x)}) {
          const Tensor y = log ? log_softmax(input, c.dim) : softmax(input, c.dim);
          CHECK(y.dtype() == dtype);
          check_matches(y, expected,
                        std::string(log ? "log_softmax " : "softmax ") + std::string(dtype_name(dtype)) + " " +
                            to_string(c.shape) + " dim " + std::to_string(c.dim) +
                            (input.is_contiguous() ? "" : " non-contiguous"));
        }
      }
    }
  }
}

TEST_CASE("softmax is stable for large inputs and handles -inf, 0-D and empty tensors", "[nn_functional][softmax]") {
  // exp(1000) overflows without the max shift.
  const Tensor big = tensor({1000.0, 1001.0, 999.0});
  check_matches(softmax(big, 0), ref_softmax(ref_of(big), 0, false));
  check_matches(log_softmax(big, 0), ref_softmax(ref_of(big), 0, true));
  const Tensor big_f32 = tensor({-1e30, 3.0e4, 3.0e4 + 1.0}, DType::f32);
  check_matches(softmax(big_f32, -1), ref_softmax(ref_of(big_f32), 0, false));
  // A masked entry gets probability 0 and log-probability -inf.
  const Tensor masked = tensor({0.5, -INFINITY, 1.5}, DType::f64);
  check_matches(softmax(masked, 0), ref_softmax(ref_of(masked), 0, false));
  check_matches(log_softmax(masked, 0), ref_softmax(ref_of(masked), 0, true));
  // 0-D: one element along dim 0 or -1.
  const Tensor scalar = scalar_tensor(2.5, DType::f64);
  CHECK(softmax(scalar, 0).dim() == 0);
  CHECK(softmax(scalar, -1).item<double>() == 1.0);
  CHECK(log_softmax(scalar, 0).item<double>() == 0.0);
  for (const Shape& shape : std::vector<Shape>{{0}, {0, 5}, {5, 0}, {2, 0, 3}}) {
    for (int64_t dim : {0, -1}) {
      const Tensor x = zeros(shape, {.dtype = DType::bf16});
      CHECK(softmax(x, dim).shape() == shape);
      CHECK(log_softmax(x, dim).dtype() == DType::bf16);
    }
  }
}

TEST_CASE("softmax matches values from torch", "[nn_functional][softmax]") {
  // torch.nn.functional.softmax(x, 0) and log_softmax(x, -1), x = [[1, 2, 4], [-1, 0.5, 3]] (torch 1.13).
  const Tensor x = tensor({{1.0, 2.0, 4.0}, {-1.0, 0.5, 3.0}}, DType::f64);
  check_matches(softmax(x, 0),
                ref_values({2, 3}, {0.8807970780, 0.8175744762, 0.7310585786, 0.1192029220, 0.1824255238, 0.2689414214}),
                Tolerance{1e-9, 0});
  check_matches(log_softmax(x, -1),
                ref_values({2, 3}, {-3.1698460196, -2.1698460196, -0.1698460196, -4.0956743294, -2.5956743294,
                                    -0.0956743294}),
                Tolerance{1e-9, 0});
}

TEST_CASE("softmax and log_softmax gradients", "[nn_functional][softmax][autograd]") {
  for (bool log : {false, true}) {
    for (int64_t dim : {-1, 0, 1}) {
      INFO((log ? "log_softmax" : "softmax") << " dim " << dim);
      auto fn = [log, dim](const TensorList& in) { return log ? log_softmax(in[0], dim) : softmax(in[0], dim); };
      check_grads(fn, {leaf({3, 5})});
      check_grads(fn, {non_contiguous_leaf({3, 5})});
      check_grads(fn, {leaf({1, 7})});
    }
    auto fn3 = [log](const TensorList& in) { return log ? log_softmax(in[0], 1) : softmax(in[0], 1); };
    check_grads(fn3, {leaf({2, 3, 4})});
    auto fn0d = [log](const TensorList& in) { return log ? log_softmax(in[0], 0) : softmax(in[0], 0); };
    check_grads(fn0d, {scalar_tensor(0.3, DType::f64).requires_grad_()});
  }
  // An empty input still has a gradient of its shape.
  Tensor empty_x = zeros({0, 4}, {.dtype = DType::f64}).requires_grad_();
  softmax(empty_x, -1).backward(zeros({0, 4}, {.dtype = DType::f64}));
  REQUIRE(empty_x.grad().defined());
  CHECK(empty_x.grad().shape() == Shape{0, 4});
  // f16 input: the gradient comes back in f16 and matches the f64 gradient of the same values.
  const Tensor values = random_tensor({3, 33}, DType::f16, -3, 3);
  const Tensor upstream = random_tensor({3, 33}, DType::f64);
  Tensor x16 = values.clone().requires_grad_();
  Tensor x64 = values.to(DType::f64).requires_grad_();
  softmax(x16, -1).backward(upstream.to(DType::f16));
  softmax(x64, -1).backward(upstream.to(DType::f16).to(DType::f64));
  CHECK(x16.grad().dtype() == DType::f16);
  check_matches(x16.grad(), ref_of(x64.grad()), Tolerance{5e-3, 1e-2});
}

// =============================================================================================
TEST_CASE("layer_norm and rms_norm match the float64 reference", "[nn_functional][norm]") {
  struct NormCase {
    Shape shape;
    Shape normalized;
  };
  const std::vector<NormCase> cases = {
      {{1}, {1}},         {{31}, {31}},       {{5, 33}, {33}},    {{3, 257}, {257}}, {{257, 3}, {3}},
      {{2, 31, 3}, {31, 3}}, {{33, 1}, {1}},  {{2, 3, 5}, {2, 3, 5}}, {{0, 7}, {7}}, {{4, 0}, {0}},
  };
  for (DType dtype : kFloatDTypes) {
    for (const NormCase& c : cases) {
      for (bool affine : {false, true}) {
        for (bool centered : {true, false}) {
          const Tensor x = random_tensor(c.shape, dtype, -3.0, 5.0);
          Tensor weight, bias;
          std::vector<double> w_values, b_values;
          if (affine) {
            weight = random_tensor(c.normalized, dtype, 0.5, 1.5);
            w_values = ref_of(weight).values;
            if (centered) {
              bias = random_tensor(c.normalized, dtype);
              b_values = ref_of(bias).values;
            }
          }
          const int64_t n = shape_numel(c.normalized);
          const double eps = centered ? 1e-5 : (dtype == DType::f64   ? std::pow(2.0, -52)
                                                : dtype == DType::f16  ? std::pow(2.0, -10)
                                                : dtype == DType::bf16 ? std::pow(2.0, -7)
                                                                       : std::pow(2.0, -23));
          const RefTensor expected = ref_norm(ref_of(x), n, w_values, b_values, eps, centered);
          for (const Tensor& input : {x, non_contiguous(x)}) {
            const Tensor y = centered ? layer_norm(input, c.normalized, weight, bias)
                                      : rms_norm(input, c.normalized, weight);
            CHECK(y.dtype() == dtype);
            check_matches(y, expected,
                          std::string(centered ? "layer_norm " : "rms_norm ") + std::string(dtype_name(dtype)) +
                              " " + to_string(c.shape) + " over " + to_string(c.normalized) +
                              (affine ? " affine" : "") + (input.is_contiguous() ? "" : " non-contiguous"));
          }
        }
      }
    }
  }
}

TEST_CASE("layer_norm matches torch and rms_norm matches its formula", "[nn_functional][norm]") {
  const Tensor x = tensor({{1.0, 2.0, 4.0}, {-1.0, 0.5, 3.0}}, DType::f64);
  const Tensor w = tensor({0.5, 1.0, 2.0}, DType::f64);
  const Tensor b = tensor({0.1, -0.2, 0.3}, DType::f64);
  // torch.nn.functional.layer_norm(x, [3], w, b, 1e-5) and layer_norm(x, [2, 3], eps=0.1) (torch 1.13).
  check_matches(layer_norm(x, {3}, w, b, 1e-5),
                ref_values({2, 3}, {-0.4345207657, -0.4672603829, 2.9726038286, -0.4555828790, -0.4020301378,
                                    2.9263917919}),
                Tolerance{1e-9, 0});
  check_matches(layer_norm(x, {2, 3}, {}, {}, 0.1),
                ref_values({2, 3}, {-0.3485219161, 0.2489442258, 1.4438765097, -1.5434542000, -0.6472549871,
                                    0.8464103678}),
                Tolerance{1e-9, 0});
  // rms_norm by hand: row [1, 2, 4] has mean square 7, row [-1, 0.5, 3] has 10.25 / 3.
  const double r0 = 1.0 / std::sqrt(7.0 + 1e-6), r1 = 1.0 / std::sqrt(10.25 / 3.0 + 1e-6);
  check_matches(rms_norm(x, {3}, w, 1e-6),
                ref_values({2, 3}, {0.5 * r0, 2.0 * r0, 8.0 * r0, -0.5 * r1, 0.5 * r1, 6.0 * r1}),
                Tolerance{1e-12, 1e-12});
  // Default eps is the dtype's machine epsilon: visible on an all-zero row (0 / sqrt(eps) = 0)
  // and on a tiny row, where eps dominates.
  const Tensor tiny = full({1, 4}, 1e-9, {.dtype = DType::f64});
  const double expected_tiny = 1e-9 / std::sqrt(1e-18 + std::pow(2.0, -52));
  CHECK(rms_norm(tiny, {4}).select(0, 0).select(0, 0).item<double>() == Approx(expected_tiny).epsilon(1e-12));
  // The gradient of layer_norm from torch: x.grad after backward([[1, -2, 0.5], [0.3, 0.2, -1]]).
  Tensor xs = x.clone().requires_grad_();
  layer_norm(xs, {3}, w, b, 1e-5).backward(tensor({{1.0, -2.0, 0.5}, {0.3, 0.2, -1.0}}, DType::f64));
  check_matches(xs.grad(),
                ref_values({2, 3}, {0.9163188583, -1.3744825826, 0.4581637244, -0.2118200783, 0.3389162887,
                                    -0.1270962104}),
                Tolerance{1e-9, 0});
}

TEST_CASE("layer_norm and rms_norm gradients", "[nn_functional][norm][autograd]") {
  for (bool centered : {true, false}) {
    INFO((centered ? "layer_norm" : "rms_norm"));
    auto plain = [centered](const TensorList& in) {
      return centered ? layer_norm(in[0], {5}) : rms_norm(in[0], {5}, {}, 1e-5);
    };
    check_grads(plain, {leaf({3, 5})});
    check_grads(plain, {non_contiguous_leaf({5, 5})});
    // With weight (and bias for layer_norm) over two trailing dims.
    if (centered) {
      auto affine = [](const TensorList& in) { return layer_norm(in[0], {3, 5}, in[1], in[2], 1e-3); };
      check_grads(affine, {leaf({2, 3, 5}), leaf({3, 5}, 0.5, 1.5), leaf({3, 5})});
    } else {
      auto affine = [](const TensorList& in) { return rms_norm(in[0], {3, 5}, in[1], 1e-3); };
      check_grads(affine, {leaf({2, 3, 5}), leaf({3, 5}, 0.5, 1.5)});
    }
    // Non-contiguous weight; the whole tensor normalized (no leading dims).
    if (centered) {
      auto whole = [](const TensorList& in) { return layer_norm(in[0], {4, 3}, in[1], in[2]); };
      check_grads(whole, {leaf({4, 3}), non_contiguous_leaf({4, 3}), leaf({4, 3})});
    } else {
      auto whole = [](const TensorList& in) { return rms_norm(in[0], {4, 3}, in[1]); };
      check_grads(whole, {leaf({4, 3}), non_contiguous_leaf({4, 3})});
    }
    // Only the weight requires grad (x constant).
    const Tensor x_const = random_tensor({3, 5}, DType::f64);
    auto weight_only = [centered, x_const](const TensorList& in) {
      return centered ? layer_norm(x_const, {5}, in[0]) : rms_norm(x_const, {5}, in[0]);
    };
    check_grads(weight_only, {leaf({5})});
  }
  // bf16 input and parameters: gradients come back in bf16 and match the f64 gradients of the
  // same values (the vjp computes in f32).
  for (bool centered : {true, false}) {
    const Tensor values = random_tensor({3, 33}, DType::bf16);
    const Tensor w_values = random_tensor({33}, DType::bf16, 0.5, 1.5);
    const Tensor upstream = random_tensor({3, 33}, DType::bf16);
    Tensor x16 = values.clone().requires_grad_(), w16 = w_values.clone().requires_grad_();
    Tensor x64 = values.to(DType::f64).requires_grad_(), w64 = w_values.to(DType::f64).requires_grad_();
    (centered ? layer_norm(x16, {33}, w16) : rms_norm(x16, {33}, w16, 1e-5)).backward(upstream);
    (centered ? layer_norm(x64, {33}, w64) : rms_norm(x64, {33}, w64, 1e-5)).backward(upstream.to(DType::f64));
    CHECK(x16.grad().dtype() == DType::bf16);
    check_matches(x16.grad(), ref_of(x64.grad()), Tolerance{2e-2, 2e-2}, "bf16 dx");
    check_matches(w16.grad(), ref_of(w64.grad()), Tolerance{2e-2, 2e-2}, "bf16 dw");
  }
  // Bias only: its gradient is dy summed over the leading dims.
  auto bias_only = [](const TensorList& in) { return layer_norm(in[0], {5}, {}, in[1]); };
  check_grads(bias_only, {leaf({3, 5}), leaf({5})});
}

// =============================================================================================
TEST_CASE("dropout matches x * mask / (1 - p) with the generator's Bernoulli mask", "[nn_functional][dropout]") {
  for (DType dtype : kFloatDTypes) {
    for (const Shape& shape : std::vector<Shape>{{1}, {31}, {33, 257}, {2, 3, 5}}) {
      for (double p : {0.1, 0.5, 0.9}) {
        const Tensor x = random_tensor(shape, dtype);
        for (const Tensor& input : {x, non_contiguous(x)}) {
          Generator generator(1234);
          const Tensor y = dropout(input, p, true, &generator);
          CHECK(y.dtype() == dtype);
          // The mask is Bernoulli(1 - p) drawn as U[0, 1) < 1 - p from the same Philox stream.
          Generator replay(1234);
          const RefTensor u = ref_of(rand(shape, {.dtype = DType::f32}, &replay));
          const RefTensor xs = ref_of(x);
          const double scale = reference::round_to(dtype, 1.0 / (1.0 - p));
          RefTensor expected{shape, std::vector<double>(xs.values.size())};
          for (size_t i = 0; i < xs.values.size(); ++i)
            expected.values[i] = u.values[i] < static_cast<float>(1.0 - p) ? xs.values[i] * scale : 0.0;
          check_matches(y, expected,
                        "dropout " + std::string(dtype_name(dtype)) + " " + to_string(shape) + " p " +
                            std::to_string(p));
        }
      }
    }
  }
}

TEST_CASE("dropout: seeding, keep rate, p = 0, p = 1, eval, empty", "[nn_functional][dropout]") {
  const Tensor x = ones({200, 500});
  Generator a(7), b(7), c(8);
  const Tensor ya = dropout(x, 0.3, true, &a);
  CHECK(all(eq(ya, dropout(x, 0.3, true, &b))).item<bool>());
  CHECK(!all(eq(ya, dropout(x, 0.3, true, &c))).item<bool>());
  // The next draw of the same generator is a different mask.
  CHECK(!all(eq(ya, dropout(x, 0.3, true, &a))).item<bool>());
  // Kept fraction of 100k draws: 0.7 within 5 standard deviations (sd = 0.00145).
  const double kept = mean(ne(ya, 0.0).to(DType::f64)).item<double>();
  CHECK(std::fabs(kept - 0.7) < 0.0073);
  // Kept entries are scaled by 1 / (1 - p): the mean stays 1 in expectation.
  CHECK(amax(ya).item<double>() == Approx(1.0 / 0.7).epsilon(1e-6));
  // p = 0 and eval mode return x itself; p = 1 gives zeros.
  CHECK(dropout(x, 0.0, true).is_same(x));
  CHECK(dropout(x, 0.5, false).is_same(x));
  const Tensor signed_x = tensor({-1.0, 2.0, 3.0});
  const Tensor dropped = dropout(signed_x, 1.0, true);
  CHECK(all(eq(dropped, 0.0)).item<bool>());
  CHECK(std::signbit(dropped.select(0, 0).item<double>()));
  const Tensor empty_x = zeros({0, 3});
  CHECK(dropout(empty_x, 0.5).shape() == Shape{0, 3});
}

TEST_CASE("dropout gradients", "[nn_functional][dropout][autograd]") {
  for (double p : {0.25, 0.6}) {
    // A fresh generator with the same seed inside fn: every evaluation uses the same mask.
    auto fn = [p](const TensorList& in) {
      Generator generator(99);
      return dropout(in[0], p, true, &generator);
    };
    check_grads(fn, {leaf({3, 5})});
    check_grads(fn, {non_contiguous_leaf({5, 3})});
  }
  auto all_dropped = [](const TensorList& in) { return dropout(in[0], 1.0); };
  check_grads(all_dropped, {leaf({3, 5})});
  // The gradient is the scaled mask itself.
  Tensor x = ones({4, 33}, {.dtype = DType::f64}).requires_grad_();
  Generator generator(5);
  const Tensor y = dropout(x, 0.4, true, &generator);
  y.backward(ones_like(y));
  CHECK(all(eq(x.grad(), y.detach())).item<bool>());
}

// =============================================================================================
TEST_CASE("embedding picks rows of the table", "[nn_functional][embedding]") {
  for (DType dtype : kFloatDTypes) {
    for (DType index_dtype : {DType::i64, DType::i32}) {
      const Tensor weight = random_tensor({10, 33}, dtype);
      const RefTensor table = ref_of(weight);
      for (const Shape& shape : std::vector<Shape>{{}, {1}, {31}, {4, 5}, {2, 3, 4}, {0}, {3, 0}}) {
        const Tensor indices = randint(0, 10, shape, {.dtype = index_dtype});
        for (const Tensor& idx : {indices, non_contiguous(indices)}) {
          const Tensor out = embedding(idx, weight);
          Shape out_shape = shape;
          out_shape.push_back(33);
          const RefTensor index_values = ref_of(indices);
          RefTensor expected{out_shape, {}};
          for (double row : index_values.values)
            for (int64_t j = 0; j < 33; ++j) expected.values.push_back(table.values[static_cast<int64_t>(row) * 33 + j]);
          CHECK(out.dtype() == dtype);
          check_matches(out, expected, tolerance_for(DType::f64),
                        "embedding " + std::string(dtype_name(dtype)) + " indices " + to_string(shape));
        }
      }
      // A non-contiguous table.
      const Tensor wide = non_contiguous(weight);
      RefTensor expected{{4, 33}, {}};
      for (int64_t row : {9, 0, 9, 3})
        for (int64_t j = 0; j < 33; ++j) expected.values.push_back(table.values[row * 33 + j]);
      check_matches(embedding(tensor({9, 0, 9, 3}), wide), expected, tolerance_for(DType::f64), "strided table");
    }
  }
}

TEST_CASE("embedding gradients: repeated indices and padding_idx", "[nn_functional][embedding][autograd]") {
  const Tensor indices = tensor({{1, 3, 1, 0}, {3, 3, 4, 1}});
  auto plain = [indices](const TensorList& in) { return embedding(indices, in[0]); };
  check_grads(plain, {leaf({5, 3})});
  check_grads(plain, {non_contiguous_leaf({5, 3})});
  // With padding_idx the padding row's entries of the output still follow the table, but get no
  // gradient (as PyTorch): fn replaces them by constants so that the numerical Jacobian agrees.
  for (int64_t padding : {3, -1, 2}) {
    const int64_t row = padding < 0 ? padding + 5 : padding;
    auto fn = [indices, padding, row](const TensorList& in) {
      return where(ne(indices, row).unsqueeze(-1), embedding(indices, in[0], padding), 0.5);
    };
    check_grads(fn, {leaf({5, 3})});
    check_grads(fn, {non_contiguous_leaf({5, 3})});
  }
  // Counts by hand: row r of dW is (number of times r appears) * 1, padding row zero.
  Tensor weight = zeros({5, 2}, {.dtype = DType::f64}).requires_grad_();
  embedding(indices, weight, 1).backward(ones({2, 4, 2}, {.dtype = DType::f64}));
  const RefTensor expected = ref_values({5, 2}, {1, 1, 0, 0, 0, 0, 3, 3, 1, 1});
  check_matches(weight.grad(), expected);
  // i32 indices take the same path.
  auto fn32 = [indices](const TensorList& in) { return embedding(indices.to(DType::i32), in[0]); };
  check_grads(fn32, {leaf({5, 3})});
}

// =============================================================================================
TEST_CASE("nn_functional errors", "[nn_functional][errors]") {
  const Tensor x = random_tensor({2, 3}, DType::f32);
  check_error([&] { softmax(x, 2); }, {"[softmax]", "dim 2"});
  check_error([&] { log_softmax(x, -3); }, {"[log_softmax]", "-3"});
  check_error([&] { softmax(tensor({1, 2}), 0); }, {"[softmax]", "floating", "int64"});
  check_error([&] { log_softmax(tensor({true, false}), 0); }, {"[log_softmax]", "floating"});
  check_error([&] { layer_norm(x, {4}); }, {"[layer_norm]", "normalized_shape [4]", "[2, 3]"});
  check_error([&] { layer_norm(x, {2, 3, 1}); }, {"[layer_norm]", "[2, 3, 1]", "[2, 3]"});
  check_error([&] { rms_norm(x, {2}); }, {"[rms_norm]", "normalized_shape [2]", "[2, 3]"});
  check_error([&] { layer_norm(x, {}); }, {"[layer_norm]", "at least one dim"});
  check_error([&] { layer_norm(x, {3}, ones({2})); }, {"[layer_norm]", "weight of shape [2]", "[3]"});
  check_error([&] { layer_norm(x, {3}, {}, ones({3, 1})); }, {"[layer_norm]", "bias of shape [3, 1]", "[3]"});
  check_error([&] { rms_norm(tensor({1, 2}), {2}); }, {"[rms_norm]", "floating"});
  check_error([&] { dropout(x, 1.5); }, {"[dropout]", "[0, 1]", "1.5"});
  check_error([&] { dropout(x, -0.1); }, {"[dropout]", "-0.1"});
  check_error([&] { dropout(x, NAN); }, {"[dropout]", "nan"});
  const Tensor table = random_tensor({10, 4}, DType::f32);
  check_error([&] { embedding(tensor({1, 10}), table); }, {"[embedding]", "index 10", "10 embeddings"});
  check_error([&] { embedding(tensor({-1, 2}), table); }, {"[embedding]", "index -1", "10 embeddings"});
  check_error([&] { embedding(tensor({{3, 12}, {0, 1}}).to(DType::i32), table); }, {"[embedding]", "index 12"});
  check_error([&] { embedding(table, tensor({1, 2})); }, {"[embedding]", "indices must be int32 or int64"});
  check_error([&] { embedding(tensor({1}), random_tensor({10}, DType::f32)); }, {"[embedding]", "2-D", "[10]"});
  check_error([&] { embedding(tensor({1}), table, 10); }, {"[embedding]", "padding_idx 10", "10 embeddings"});
  check_error([&] { embedding(tensor({1}), table, -11); }, {"[embedding]", "padding_idx -11"});
}
