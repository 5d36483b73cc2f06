// matmul, linear and scaled_dot_product_attention against float64 references written from the
// definitions (plain loops here): every 1-D / 2-D / batched / broadcast case of torch.matmul, odd
// sizes (1, 31, 33, 65 and past the kernel's 96 x 256 x 256 blocks), transposed, strided and
// expanded operands, empty tensors, f32/f64/f16/bf16; gradcheck and gradgradcheck of all three;
// error messages; the same on CUDA (skipped without a device). A few values are checked against
// numbers printed by PyTorch 1.13.
#include <cmath>
#include <limits>

#include "keel/autograd/gradcheck.h"
#include "test_util.h"

using namespace keel;
using namespace keel::test;
using reference::RefTensor;
using autograd::TensorList;

namespace {

// ---- float64 references ------------------------------------------------------------------------

// torch.matmul on doubles: value, and |a| @ |b| (the scale of the rounding error of a K-term sum).
struct RefProduct {
  RefTensor value, magnitude;
  int64_t k = 0;
};

Shape broadcast_ref(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t sa = i + a.size() >= rank ? a[i + a.size() - rank] : 1;
    const int64_t sb = i + b.size() >= rank ? b[i + b.size() - rank] : 1;
    out[i] = sa == 1 ? sb : sa;
  }
  return out;
}

RefProduct ref_matmul(const RefTensor& a, const RefTensor& b) {
  Shape as = a.shape, bs = b.shape;
  const bool a_vector = as.size() == 1, b_vector = bs.size() == 1;
  if (a_vector) as.insert(as.begin(), 1);
  if (b_vector) bs.push_back(1);
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  const Shape batch = broadcast_ref(Shape(as.begin(), as.end() - 2), Shape(bs.begin(), bs.end() - 2));
  Shape a_full = batch, b_full = batch;
  a_full.insert(a_full.end(), {m, k});
  b_full.insert(b_full.end(), {k, n});
  int64_t batch_count = 1;
  for (int64_t s : batch) batch_count *= s;
  Shape result = batch;
  if (!a_vector) result.push_back(m);
  if (!b_vector) result.push_back(n);
  RefProduct r{{result, std::vector<double>(static_cast<size_t>(batch_count * m * n))},
               {result, std::vector<double>(static_cast<size_t>(batch_count * m * n))},
               k};
  for (int64_t z = 0; z < batch_count; ++z)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0, magnitude = 0;
        for (int64_t p = 0; p < k; ++p) {
          const double x = a.values[reference::broadcast_source(as, a_full, (z * m + i) * k + p)];
          const double y = b.values[reference::broadcast_source(bs, b_full, (z * k + p) * n + j)];
          sum += x * y;
          magnitude += std::fabs(x * y);
        }
        r.value.values[(z * m + i) * n + j] = sum;
        r.magnitude.values[(z * m + i) * n + j] = magnitude;
      }
  return r;
}

// A K-term sum in precision u is within K u sum|terms| of the exact one; the result is then
// rounded to its dtype (tolerance_for). 16-bit products accumulate in f32.
void check_product(const Tensor& got, const RefProduct& expected, const std::string& what) {
  INFO(what);
  REQUIRE(got.shape() == expected.value.shape);
  const double unit = got.dtype() == DType::f64 ? 0x1p-53 : 0x1p-24;
  const Tolerance rounding = tolerance_for(got.dtype());
  const RefTensor values = reference::from_tensor(got);
  for (int64_t i = 0; i < values.numel(); ++i) {
    const double ref = expected.value.values[i];
    const double bound = rounding.atol + rounding.rtol * std::fabs(ref) +
                         2.0 * static_cast<double>(expected.k) * unit * expected.magnitude.values[i];
    if (!(std::fabs(values.values[i] - ref) <= bound)) {
      FAIL_CHECK("element " << i << ": got " << values.values[i] << ", expected " << ref << " (bound " << bound << ")");
      return;
    }
  }
  SUCCEED();
}

// The 16-bit value of x as float64, so that references see exactly the operands the op got.
RefTensor ref_of(const Tensor& x) { return reference::from_tensor(x); }

void check_matmul(const Tensor& a, const Tensor& b, const std::string& what) {
  check_product(matmul(a, b), ref_matmul(ref_of(a), ref_of(b)), what);
}

// y = x W^T + bias (bias broadcast to y).
RefTensor ref_linear(const RefTensor& x, const RefTensor& w, const RefTensor* bias, RefTensor* magnitude) {
  RefTensor wt{{w.shape[1], w.shape[0]}, std::vector<double>(w.values.size())};
  for (int64_t o = 0; o < w.shape[0]; ++o)
    for (int64_t i = 0; i < w.shape[1]; ++i) wt.values[i * w.shape[0] + o] = w.values[o * w.shape[1] + i];
  RefProduct p = ref_matmul(x, wt);
  if (bias) {
    for (int64_t i = 0; i < p.value.numel(); ++i) {
      const double b = bias->values[reference::broadcast_source(bias->shape, p.value.shape, i)];
      p.value.values[i] += b;
      p.magnitude.values[i] += std::fabs(b);
    }
  }
  if (magnitude) *magnitude = p.magnitude;
  return p.value;
}

// Attention on doubles, from the definition: q [B, H, L, E], k [B, Hkv, S, E], v [B, Hkv, S, Ev];
// query head h reads key/value head h / (H / Hkv). mask: none, causal (j <= i), bool (true =
// attend) or additive, broadcast to [B, H, L, S].
enum class MaskKind { none, causal, boolean, additive };

RefTensor ref_attention(const RefTensor& q, const RefTensor& k, const RefTensor& v, MaskKind kind,
                        const RefTensor* mask, double scale) {
  const int64_t batch = q.shape[0], heads = q.shape[1], length = q.shape[2], embed = q.shape[3];
  const int64_t key_heads = k.shape[1], positions = k.shape[2], value_embed = v.shape[3];
  const int64_t group = heads / key_heads;
  const Shape scores_shape = {batch, heads, length, positions};
  RefTensor out{{batch, heads, length, value_embed},
                std::vector<double>(static_cast<size_t>(batch * heads * length * value_embed))};
  for (int64_t z = 0; z < batch; ++z)
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t hk = h / group;
      for (int64_t i = 0; i < length; ++i) {
        std::vector<double> s(static_cast<size_t>(positions));
        double top = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < positions; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < embed; ++e)
            dot += q.values[((z * heads + h) * length + i) * embed + e] *
                   k.values[((z * key_heads + hk) * positions + j) * embed + e];
          double score = dot * scale;
          const int64_t flat = ((z * heads + h) * length + i) * positions + j;
          if (kind == MaskKind::causal && j > i) score = -std::numeric_limits<double>::infinity();
          if (kind == MaskKind::boolean &&
              mask->values[reference::broadcast_source(mask->shape, scores_shape, flat)] == 0)
            score = -std::numeric_limits<double>::infinity();
          if (kind == MaskKind::additive) score += mask->values[reference::broadcast_source(mask->shape, scores_shape, flat)];
          s[j] = score;
          top = std::max(top, score);
        }
        double total = 0;
        for (double& x : s) total += (x = std::exp(x - top));
        for (int64_t c = 0; c < value_embed; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < positions; ++j)
            acc += s[j] / total * v.values[((z * key_heads + hk) * positions + j) * value_embed + c];
          out.values[((z * heads + h) * length + i) * value_embed + c] = acc;
        }
      }
    }
  return out;
}

Tensor leaf(const Shape& shape) { return random_tensor(shape, DType::f64).requires_grad_(); }
Tensor non_contiguous_leaf(const Shape& shape) { return non_contiguous(random_tensor(shape, DType::f64)).requires_grad_(); }

void check_gradients(const autograd::SingleOutputFn& fn, const TensorList& inputs, const std::string& what,
                     bool second_order = true) {
  INFO(what);
  CHECK_NOTHROW(autograd::gradcheck(fn, inputs));
  if (second_order) CHECK_NOTHROW(autograd::gradgradcheck(fn, inputs));
}

const std::vector<int64_t> kEdgeSizes = {1, 31, 33, 65};

}  // namespace

// ---- matmul forward ------------------------------------------------------------------------------
TEST_CASE("matmul 2-D matches the float64 reference on odd sizes", "[linalg][matmul]") {
  for (int64_t m : kEdgeSizes)
    for (int64_t k : kEdgeSizes)
      for (int64_t n : kEdgeSizes) {
        const Tensor a = random_tensor({m, k}, DType::f32), b = random_tensor({k, n}, DType::f32);
        check_matmul(a, b, "f32 [" + std::to_string(m) + ", " + std::to_string(k) + "] x [" + std::to_string(k) +
                               ", " + std::to_string(n) + "]");
      }
}

TEST_CASE("matmul past the kernel's blocks (several K slices, row and column tiles, threads)", "[linalg][matmul]") {
  for (DType dtype : kFloatDTypes) {
    const Tensor a = random_tensor({200, 517}, dtype), b = random_tensor({517, 290}, dtype);
    check_matmul(a, b, std::string("blocked ") + std::string(dtype_name(dtype)));
    check_matmul(non_contiguous(a), non_contiguous(b), std::string("blocked transposed ") + std::string(dtype_name(dtype)));
  }
  // Tall-skinny both ways (the kernel computes the transposed product when N < M).
  check_matmul(random_tensor({700, 300}, DType::f32), random_tensor({300, 3}, DType::f32), "tall [700, 300] x [300, 3]");
  check_matmul(random_tensor({3, 300}, DType::f32), random_tensor({300, 700}, DType::f32), "wide [3, 300] x [300, 700]");
}

TEST_CASE("matmul in every dtype, with tolerances per dtype", "[linalg][matmul]") {
  for (DType dtype : kFloatDTypes)
    for (int64_t k : {1, 33, 65}) {
      const Tensor a = random_tensor({31, k}, dtype), b = random_tensor({k, 33}, dtype);
      check_matmul(a, b, std::string(dtype_name(dtype)) + " K=" + std::to_string(k));
      check_matmul(random_tensor({2, 3, 31, k}, dtype), random_tensor({3, k, 5}, dtype),
                   std::string(dtype_name(dtype)) + " batched K=" + std::to_string(k));
      check_matmul(random_tensor({k}, dtype), random_tensor({k}, dtype), std::string(dtype_name(dtype)) + " dot");
    }
}

TEST_CASE("matmul covers every 1-D, 2-D, batched and broadcast case of torch.matmul", "[linalg][matmul]") {
  struct Case {
    Shape a, b, result;
  };
  const std::vector<Case> cases = {
      {{5}, {5}, {}},                            // dot
      {{5}, {5, 3}, {3}},                        // vector x matrix
      {{4, 5}, {5}, {4}},                        // matrix x vector
      {{4, 5}, {5, 3}, {4, 3}},                  // matrix x matrix
      {{5}, {2, 5, 3}, {2, 3}},                  // vector x batch
      {{2, 4, 5}, {5}, {2, 4}},                  // batch x vector
      {{2, 4, 5}, {5, 3}, {2, 4, 3}},            // batch x matrix (folded into one GEMM)
      {{4, 5}, {2, 5, 3}, {2, 4, 3}},            // matrix x batch
      {{2, 4, 5}, {2, 5, 3}, {2, 4, 3}},         // batch x batch
      {{2, 1, 3, 4}, {5, 4, 6}, {2, 5, 3, 6}},   // broadcast batch dims
      {{1, 4, 5}, {3, 5, 2}, {3, 4, 2}},         // size-1 batch broadcast
      {{3, 1, 4, 5}, {1, 2, 5, 3}, {3, 2, 4, 3}}, // both broadcast
      {{2, 3, 1, 5}, {5, 7}, {2, 3, 1, 7}},       // M = 1 with batch
      {{5}, {3, 2, 5, 4}, {3, 2, 4}},             // vector x 4-D
  };
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const Case& c : cases) {
      const Tensor a = random_tensor(c.a, dtype), b = random_tensor(c.b, dtype);
      const std::string what = to_string(c.a) + " x " + to_string(c.b) + " " + std::string(dtype_name(dtype));
      const Tensor y = matmul(a, b);
      CHECK(y.shape() == c.result);
      CHECK(y.dtype() == dtype);
      check_matmul(a, b, what);
      check_matmul(non_contiguous(a), b, what + " (a non-contiguous)");
      check_matmul(a, non_contiguous(b), what + " (b non-contiguous)");
    }
  }
}

TEST_CASE("matmul reads transposed, strided, sliced and expanded operands", "[linalg][matmul]") {
  const Tensor base = random_tensor({40, 70}, DType::f32);
  const Tensor other = random_tensor({70, 33}, DType::f32);
  check_matmul(base.t(), base, "a^T a");
  check_matmul(base, base.t(), "a a^T");
  check_matmul(base.slice(0, 1, 40, 3).slice(1, 0, 70, 2), other.slice(0, 0, 70, 2), "strided slices");
  check_matmul(base.narrow(1, 5, 33), other.narrow(0, 2, 33).t().t(), "narrowed");
  // Expanded inside the matrix (stride 0 along rows / columns).
  check_matmul(random_tensor({1, 70}, DType::f32).expand({31, 70}), other, "rows expanded");
  check_matmul(base, random_tensor({70, 1}, DType::f32).expand({70, 9}), "columns expanded");
  // Batched with permuted batch dims (no fold possible) and a transposed batched operand.
  const Tensor a = random_tensor({3, 2, 7, 9}, DType::f32).transpose(0, 1);  // [2, 3, 7, 9]
  const Tensor b = random_tensor({2, 3, 11, 9}, DType::f32).transpose(-1, -2);  // [2, 3, 9, 11]
  check_matmul(a, b, "permuted batch, transposed b");
  check_matmul(a, random_tensor({9, 5}, DType::f32), "permuted batch x matrix");
  // An f16 operand pair with strides.
  check_matmul(non_contiguous(random_tensor({33, 31}, DType::f16)), random_tensor({31, 65}, DType::f16).slice(1, 0, 65, 2),
               "f16 strided");
}

TEST_CASE("matmul of empty tensors", "[linalg][matmul]") {
  // K = 0: sums of nothing are zeros.
  const Tensor zeros_out = matmul(empty({3, 0}), empty({0, 4}));
  check_matches(zeros_out, RefTensor{{3, 4}, std::vector<double>(12, 0.0)}, "K = 0");
  check_matches(matmul(empty({0}, {.dtype = DType::f64}), empty({0}, {.dtype = DType::f64})), RefTensor{{}, {0.0}},
                "dot of empty vectors");
  check_matches(matmul(empty({2, 3, 0}, {.dtype = DType::bf16}), empty({0, 5}, {.dtype = DType::bf16})),
                RefTensor{{2, 3, 5}, std::vector<double>(30, 0.0)}, "batched K = 0");
  CHECK(matmul(empty({0, 3}), empty({3, 4})).shape() == Shape{0, 4});
  CHECK(matmul(empty({3, 4}), empty({4, 0})).shape() == Shape{3, 0});
  CHECK(matmul(empty({2, 0, 3, 4}), empty({4, 5})).shape() == Shape{2, 0, 3, 5});
  CHECK(matmul(empty({0, 1, 3, 4}), empty({2, 4, 5})).shape() == Shape{0, 2, 3, 5});
}

TEST_CASE("matmul matches numbers from PyTorch", "[linalg][matmul]") {
  // torch 1.13:
  //   a = torch.arange(24, dtype=torch.float64).reshape(2, 1, 3, 4) / 10 - 1
  //   b = torch.arange(40, dtype=torch.float64).reshape(5, 4, 2) / 20 - 0.5
  //   y = a @ b                        # [2, 5, 3, 2]
  //   y[0, 0], y[1, 4], y.sum()
  const Tensor a = arange(0, 24, 1, {.dtype = DType::f64}).reshape({2, 1, 3, 4}) / 10 - 1;
  const Tensor b = arange(0, 40, 1, {.dtype = DType::f64}).reshape({5, 4, 2}) / 20 - 0.5;
  const Tensor y = matmul(a, b);
  REQUIRE(y.shape() == Shape{2, 5, 3, 2});
  check_matches(y.select(0, 0).select(0, 0), RefTensor{{3, 2}, {1.24, 1.07, 0.68, 0.59, 0.12, 0.11}}, "y[0, 0]");
  check_matches(y.select(0, 1).select(0, 4), RefTensor{{3, 2}, {1.8, 1.87, 3.8, 3.95, 5.8, 6.03}}, "y[1, 4]");
  CHECK(sum(y).item<double>() == Approx(20.1).epsilon(1e-12));
}

TEST_CASE("grouped-query causal attention matches numbers from PyTorch", "[linalg][sdpa]") {
  // torch 1.13 (F.scaled_dot_product_attention(..., is_causal=True, enable_gqa=True) of torch 2.5,
  // written out: k/v heads repeat_interleave'd, top-left causal mask):
  //   q = torch.arange(24, dtype=torch.float64).reshape(1, 4, 3, 2).sin()
  //   k = torch.arange(12, dtype=torch.float64).reshape(1, 2, 3, 2).cos()
  //   v = torch.arange(18, dtype=torch.float64).reshape(1, 2, 3, 3).sin() * 2
  //   kk, vv = k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1)
  //   s = (q @ kk.transpose(-1, -2)) / 2 ** 0.5
  //   s = s.masked_fill(~torch.ones(3, 3, dtype=torch.bool).tril(), float('-inf'))
  //   o = s.softmax(-1) @ vv;  o[0, 1], o[0, 3], o.sum()
  const Tensor q = sin(arange(0, 24, 1, {.dtype = DType::f64}).reshape({1, 4, 3, 2}));
  const Tensor k = cos(arange(0, 12, 1, {.dtype = DType::f64}).reshape({1, 2, 3, 2}));
  const Tensor v = sin(arange(0, 18, 1, {.dtype = DType::f64}).reshape({1, 2, 3, 3})) * 2;
  const Tensor o = scaled_dot_product_attention(q, k, v, {.is_causal = true});
  REQUIRE(o.shape() == Shape{1, 4, 3, 3});
  const Tolerance tol{1e-11, 1e-10};  // the printed digits
  check_matches(o.select(0, 0).select(0, 1),
                RefTensor{{3, 3},
                          {0.0, 1.682941969616, 1.818594853651, 0.054208038796, 1.069001593562, 1.100960013161,
                           0.020375048808, -0.364152612403, -0.413880041146}},
                tol, "o[0, 1]");
  check_matches(o.select(0, 0).select(0, 3),
                RefTensor{{3, 3},
                          {0.824236970484, -1.088042221779, -1.999980413101, 0.53086137101, -0.789874371965,
                           -1.384403260049, -0.008031391098, 0.05493205742, 0.067391225678}},
                tol, "o[0, 3]");
  CHECK(sum(o).item<double>() == Approx(2.113054472658).epsilon(1e-11));
}

// ---- matmul backward ------------------------------------------------------------------------------
TEST_CASE("matmul passes gradcheck and gradgradcheck in every case", "[linalg][matmul][autograd]") {
  const autograd::SingleOutputFn fn = [](const TensorList& x) { return matmul(x[0], x[1]); };
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{5}, {5}},           {{5}, {5, 3}},       {{4, 5}, {5}},          {{3, 5}, {5, 4}},
      {{5}, {2, 5, 3}},     {{2, 4, 5}, {5}},    {{2, 3, 5}, {5, 4}},    {{3, 5}, {2, 5, 4}},
      {{2, 3, 5}, {2, 5, 4}}, {{2, 1, 3, 4}, {3, 4, 2}}, {{1, 3, 4}, {2, 4, 3}}, {{2, 3, 1, 5}, {5, 3}},
  };
  for (const auto& [sa, sb] : cases) {
    const std::string what = to_string(sa) + " x " + to_string(sb);
    check_gradients(fn, {leaf(sa), leaf(sb)}, what);
    check_gradients(fn, {non_contiguous_leaf(sa), non_contiguous_leaf(sb)}, what + " non-contiguous");
  }
  // Only one operand requires grad.
  check_gradients(fn, {leaf({3, 5}), random_tensor({5, 4}, DType::f64)}, "b constant");
  check_gradients(fn, {random_tensor({2, 3, 5}, DType::f64), leaf({5, 4})}, "a constant");
  // A transposed view of a leaf as an operand.
  const autograd::SingleOutputFn transposed = [](const TensorList& x) { return matmul(x[0].t(), x[1]); };
  check_gradients(transposed, {leaf({5, 3}), leaf({5, 4})}, "a^T b");
}

TEST_CASE("matmul backward gives dA = dY B^T and dB = A^T dY summed over broadcast dims", "[linalg][matmul][autograd]") {
  const Tensor a = leaf({2, 1, 3, 4}), b = leaf({5, 4, 2});
  const Tensor dy = random_tensor({2, 5, 3, 2}, DType::f64);
  matmul(a, b).backward(dy);
  // dA[z0, 0, i, p] = sum_{z1, j} dY[z0, z1, i, j] b[z1, p, j];  dB[z1, p, j] = sum_{z0, i} a[z0, 0, i, p] dY[z0, z1, i, j]
  const RefTensor ra = ref_of(a.detach()), rb = ref_of(b.detach()), rdy = ref_of(dy);
  RefTensor da{{2, 1, 3, 4}, std::vector<double>(24)}, db{{5, 4, 2}, std::vector<double>(40)};
  for (int64_t z0 = 0; z0 < 2; ++z0)
    for (int64_t z1 = 0; z1 < 5; ++z1)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t j = 0; j < 2; ++j)
          for (int64_t p = 0; p < 4; ++p) {
            const double g = rdy.values[((z0 * 5 + z1) * 3 + i) * 2 + j];
            da.values[(z0 * 3 + i) * 4 + p] += g * rb.values[(z1 * 4 + p) * 2 + j];
            db.values[(z1 * 4 + p) * 2 + j] += g * ra.values[(z0 * 3 + i) * 4 + p];
          }
  check_matches(a.grad(), da, "dA");
  check_matches(b.grad(), db, "dB");
}

// ---- linear ----------------------------------------------------------------------------------------
TEST_CASE("linear matches x W^T + b", "[linalg][linear]") {
  for (DType dtype : kFloatDTypes) {
    for (const Shape& x_shape : std::vector<Shape>{{7}, {31, 33}, {2, 3, 33}, {2, 0, 33}}) {
      const int64_t in = x_shape.back();
      const Tensor x = random_tensor(x_shape, dtype), w = random_tensor({65, in}, dtype), b = random_tensor({65}, dtype);
      const std::string what = to_string(x_shape) + " " + std::string(dtype_name(dtype));
      RefTensor magnitude;
      const RefTensor with_bias = ref_linear(ref_of(x), ref_of(w), nullptr, &magnitude);
      (void)with_bias;
      for (bool use_bias : {false, true}) {
        const RefTensor rb = ref_of(b);
        const RefTensor expected = ref_linear(ref_of(x), ref_of(w), use_bias ? &rb : nullptr, &magnitude);
        const Tensor y = linear(x, w, use_bias ? b : Tensor());
        check_product(y, {expected, magnitude, in}, what + (use_bias ? " with bias" : " without bias"));
        check_product(linear(non_contiguous(x), non_contiguous(w), use_bias ? b : Tensor()),
                      {expected, magnitude, in}, what + " non-contiguous");
      }
    }
  }
  // A bias that broadcasts over the rows too ([rows, out]).
  const Tensor x = random_tensor({4, 5}, DType::f64), w = random_tensor({3, 5}, DType::f64),
               b = random_tensor({4, 3}, DType::f64);
  const RefTensor rb = ref_of(b);
  check_matches(linear(x, w, b), ref_linear(ref_of(x), ref_of(w), &rb, nullptr), "2-D bias");
}

TEST_CASE("linear passes gradcheck and gradgradcheck", "[linalg][linear][autograd]") {
  const autograd::SingleOutputFn with_bias = [](const TensorList& x) { return linear(x[0], x[1], x[2]); };
  const autograd::SingleOutputFn without_bias = [](const TensorList& x) { return linear(x[0], x[1]); };
  check_gradients(with_bias, {leaf({3, 5}), leaf({4, 5}), leaf({4})}, "2-D with bias");
  check_gradients(without_bias, {leaf({3, 5}), leaf({4, 5})}, "2-D without bias");
  check_gradients(with_bias, {leaf({2, 3, 5}), leaf({4, 5}), leaf({4})}, "3-D with bias");
  check_gradients(without_bias, {leaf({2, 3, 5}), leaf({4, 5})}, "3-D without bias");
  check_gradients(with_bias, {leaf({5}), leaf({4, 5}), leaf({4})}, "1-D input");
  check_gradients(with_bias, {non_contiguous_leaf({3, 5}), non_contiguous_leaf({4, 5}), leaf({4})}, "non-contiguous");
  check_gradients(with_bias, {leaf({3, 5}), leaf({4, 5}), leaf({3, 4})}, "2-D bias");
  check_gradients(with_bias, {random_tensor({2, 3, 5}, DType::f64), leaf({4, 5}), random_tensor({4}, DType::f64)},
                  "weight only");
}

// ---- scaled dot-product attention -----------------------------------------------------------------
TEST_CASE("scaled_dot_product_attention matches the float64 reference", "[linalg][sdpa]") {
  struct Case {
    std::string name;
    int64_t heads, key_heads, length, positions;
    MaskKind mask;
    Shape mask_shape;
    std::optional<double> scale;
  };
  const std::vector<Case> cases = {
      {"plain", 3, 3, 5, 7, MaskKind::none, {}, std::nullopt},
      {"causal L < S", 3, 3, 5, 7, MaskKind::causal, {}, std::nullopt},
      {"causal L > S", 2, 2, 7, 5, MaskKind::causal, {}, std::nullopt},
      {"bool mask [L, S]", 3, 3, 5, 7, MaskKind::boolean, {5, 7}, std::nullopt},
      {"bool mask [B, 1, L, S]", 2, 2, 4, 6, MaskKind::boolean, {2, 1, 4, 6}, std::nullopt},
      {"float mask [B, H, L, S]", 3, 3, 5, 7, MaskKind::additive, {2, 3, 5, 7}, std::nullopt},
      {"float mask [S]", 3, 3, 5, 7, MaskKind::additive, {7}, 0.3},
      {"GQA 4 / 2", 4, 2, 5, 7, MaskKind::none, {}, std::nullopt},
      {"GQA 6 / 2 causal", 6, 2, 6, 6, MaskKind::causal, {}, std::nullopt},
      {"MQA 3 / 1", 3, 1, 5, 33, MaskKind::none, {}, 1.5},
      {"long", 2, 2, 33, 65, MaskKind::causal, {}, std::nullopt},
  };
  for (DType dtype : kFloatDTypes) {
    for (const Case& c : cases) {
      const int64_t batch = 2, embed = 8, value_embed = 6;
      const Tensor q = random_tensor({batch, c.heads, c.length, embed}, dtype);
      const Tensor k = random_tensor({batch, c.key_heads, c.positions, embed}, dtype);
      const Tensor v = random_tensor({batch, c.key_heads, c.positions, value_embed}, dtype);
      SdpaOptions options;
      options.scale = c.scale;
      options.is_causal = c.mask == MaskKind::causal;
      RefTensor ref_mask;
      if (c.mask == MaskKind::boolean) {
        // Keep key 0 for every query: no fully masked row (whose softmax is NaN, as in PyTorch).
        Tensor mask = rand(c.mask_shape) > 0.4;
        mask = logical_or(mask, arange(0, c.mask_shape.back(), 1) == 0);
        options.attn_mask = mask;
        ref_mask = ref_of(mask);
      } else if (c.mask == MaskKind::additive) {
        options.attn_mask = random_tensor(c.mask_shape, dtype);
        ref_mask = ref_of(options.attn_mask);
      }
      const double scale = c.scale.value_or(1.0 / std::sqrt(static_cast<double>(embed)));
      const RefTensor expected = ref_attention(ref_of(q), ref_of(k), ref_of(v), c.mask, &ref_mask, scale);
      // Scores and weights are rounded to 16 bits between the steps: a few units of bf16/f16 eps.
      const Tolerance tol = dtype == DType::bf16 ? Tolerance{4e-2, 4e-2}
                            : dtype == DType::f16 ? Tolerance{5e-3, 5e-3}
                                                  : tolerance_for(dtype);
      const std::string what = c.name + " " + std::string(dtype_name(dtype));
      check_matches(scaled_dot_product_attention(q, k, v, options), expected, tol, what);
      check_matches(scaled_dot_product_attention(non_contiguous(q), non_contiguous(k), non_contiguous(v), options),
                    expected, tol, what + " non-contiguous");
    }
  }
}

TEST_CASE("scaled_dot_product_attention on 2-D and 3-D inputs and with dropout", "[linalg][sdpa]") {
  const Tensor q = random_tensor({5, 4}, DType::f64), k = random_tensor({7, 4}, DType::f64),
               v = random_tensor({7, 3}, DType::f64);
  const RefTensor expected = ref_attention(ref_of(q.view({1, 1, 5, 4})), ref_of(k.view({1, 1, 7, 4})),
                                           ref_of(v.view({1, 1, 7, 3})), MaskKind::none, nullptr, 0.5);
  check_matches(scaled_dot_product_attention(q, k, v, {.scale = 0.5}), RefTensor{{5, 3}, expected.values}, "2-D");
  // 3-D q with shared 2-D k, v (broadcast batch).
  const Tensor q3 = random_tensor({2, 5, 4}, DType::f64);
  const Tensor y3 = scaled_dot_product_attention(q3, k, v);
  REQUIRE(y3.shape() == Shape{2, 5, 3});
  for (int64_t z = 0; z < 2; ++z) {
    const RefTensor e = ref_attention(ref_of(q3.select(0, z).view({1, 1, 5, 4})), ref_of(k.view({1, 1, 7, 4})),
                                      ref_of(v.view({1, 1, 7, 3})), MaskKind::none, nullptr, 0.5);
    check_matches(y3.select(0, z), RefTensor{{5, 3}, e.values}, "3-D x 2-D");
  }
  // dropout_p = 1 drops every weight; dropout_p in (0, 1) keeps the mean output (inverted dropout).
  check_matches(scaled_dot_product_attention(q, k, v, {.dropout_p = 1.0}), RefTensor{{5, 3}, std::vector<double>(15, 0.0)},
                "dropout 1");
  // With v = 1 each output row is sum_j w_j m_j / (1 - p), of mean 1 (sum_j w_j = 1): 20000 rows
  // of 7 draws put the mean within 0.005 (one standard deviation) of 1.
  const Tensor ones_v = ones({7, 1}, {.dtype = DType::f64});
  const Tensor dropped = scaled_dot_product_attention(random_tensor({20000, 4}, DType::f64), k, ones_v, {.dropout_p = 0.3});
  CHECK(mean(dropped).item<double>() == Approx(1.0).margin(0.03));
  CHECK(amax(abs(dropped - 1.0)).item<double>() > 0.1);  // the draws do change rows
}

TEST_CASE("scaled_dot_product_attention passes gradcheck", "[linalg][sdpa][autograd]") {
  using Fn = autograd::SingleOutputFn;
  const Fn plain = [](const TensorList& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); };
  const Fn causal = [](const TensorList& x) {
    return scaled_dot_product_attention(x[0], x[1], x[2], {.is_causal = true});
  };
  const Fn masked = [](const TensorList& x) {
    return scaled_dot_product_attention(x[0], x[1], x[2], {.attn_mask = x[3]});
  };
  check_gradients(plain, {leaf({2, 3, 4}), leaf({2, 5, 4}), leaf({2, 5, 3})}, "plain");
  check_gradients(causal, {leaf({2, 5, 4}), leaf({2, 4, 4}), leaf({2, 4, 3})}, "causal");
  Tensor bool_mask = logical_or(rand({3, 5}) > 0.5, arange(0, 5, 1) == 0);
  check_gradients(masked, {leaf({2, 3, 4}), leaf({2, 5, 4}), leaf({2, 5, 3}), bool_mask}, "bool mask");
  check_gradients(masked, {leaf({2, 3, 4}), leaf({2, 5, 4}), leaf({2, 5, 3}), leaf({3, 5})}, "float mask");
  check_gradients(causal, {leaf({1, 4, 3, 2}), leaf({1, 2, 3, 2}), leaf({1, 2, 3, 3})}, "GQA 4 / 2");
  check_gradients(plain, {non_contiguous_leaf({2, 3, 4}), non_contiguous_leaf({2, 5, 4}), leaf({2, 5, 3})},
                  "non-contiguous");
}

// ---- CUDA (cuBLAS) -----------------------------------------------------------------------------------
TEST_CASE("matmul, linear and attention on CUDA match the float64 reference", "[linalg][cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  const Device gpu = Device::cuda(0);
  for (DType dtype : kFloatDTypes) {
    const std::string name(dtype_name(dtype));
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{200, 517}, {517, 290}}, {{31, 33}, {33, 65}}, {{5}, {5}},       {{65}, {65, 31}},
        {{33, 65}, {65}},         {{2, 1, 3, 4}, {5, 4, 6}}, {{2, 31, 33}, {33, 5}}, {{4, 5}, {2, 5, 3}}};
    for (const auto& [sa, sb] : shapes) {
      const Tensor a = random_tensor(sa, dtype), b = random_tensor(sb, dtype);
      const RefProduct expected = ref_matmul(ref_of(a), ref_of(b));
      const std::string what = to_string(sa) + " x " + to_string(sb) + " " + name;
      check_product(matmul(a.to(gpu), b.to(gpu)).cpu(), expected, what);
      // Transposed (unit row stride) and sliced (no unit stride: copied first) operands.
      check_product(matmul(non_contiguous(a.to(gpu)), non_contiguous(b.to(gpu))).cpu(), expected, what + " transposed");
    }
    const Tensor a = random_tensor({33, 40}, dtype), b = random_tensor({40, 17}, dtype);
    check_product(matmul(a.to(gpu).slice(1, 0, 40, 2), b.to(gpu).slice(0, 0, 40, 2)).cpu(),
                  ref_matmul(ref_of(a.slice(1, 0, 40, 2)), ref_of(b.slice(0, 0, 40, 2))), "strided " + name);
    check_matches(matmul(zeros({3, 0}, {dtype, gpu}), zeros({0, 4}, {dtype, gpu})).cpu(),
                  RefTensor{{3, 4}, std::vector<double>(12, 0.0)}, "K = 0 " + name);
    const Tensor x = random_tensor({2, 3, 33}, dtype), w = random_tensor({65, 33}, dtype), bias = random_tensor({65}, dtype);
    const RefTensor rb = ref_of(bias);
    RefTensor magnitude;
    const RefTensor y = ref_linear(ref_of(x), ref_of(w), &rb, &magnitude);
    check_product(linear(x.to(gpu), w.to(gpu), bias.to(gpu)).cpu(), {y, magnitude, 33}, "linear " + name);
  }
  const Tensor q = random_tensor({2, 4, 5, 8}, DType::f32), k = random_tensor({2, 2, 7, 8}, DType::f32),
               v = random_tensor({2, 2, 7, 6}, DType::f32);
  const RefTensor expected = ref_attention(ref_of(q), ref_of(k), ref_of(v), MaskKind::causal, nullptr, 1 / std::sqrt(8.0));
  check_matches(scaled_dot_product_attention(q.to(gpu), k.to(gpu), v.to(gpu), {.is_causal = true}).cpu(), expected,
                "sdpa GQA causal");
  // Gradients on the device equal the CPU's.
  const Tensor a = random_tensor({2, 3, 5}, DType::f64), b = random_tensor({5, 4}, DType::f64);
  const Tensor a_cpu = a.clone().requires_grad_(), b_cpu = b.clone().requires_grad_();
  const Tensor a_gpu = a.to(gpu).requires_grad_(), b_gpu = b.to(gpu).requires_grad_();
  sum(matmul(a_cpu, b_cpu)).backward();
  sum(matmul(a_gpu, b_gpu)).backward();
  check_matches(a_gpu.grad().cpu(), reference::from_tensor(a_cpu.grad()), "dA on CUDA");
  check_matches(b_gpu.grad().cpu(), reference::from_tensor(b_cpu.grad()), "dB on CUDA");
}

// ---- errors -----------------------------------------------------------------------------------------
TEST_CASE("matmul, linear and attention errors name the op and the shapes", "[linalg][errors]") {
  check_error([] { matmul(empty({2, 3}), empty({4, 5})); }, {"[matmul]", "[2, 3]", "[4, 5]"});
  check_error([] { matmul(empty({3}), empty({4})); }, {"[matmul]", "[3]", "[4]"});
  check_error([] { matmul(empty({2, 3, 4}), empty({3, 4, 5})); }, {"[matmul]", "[2, 3, 4]", "[3, 4, 5]", "broadcast"});
  check_error([] { matmul(empty({}), empty({3})); }, {"[matmul]", "at least 1 dim"});
  check_error([] { matmul(empty({2, 3}), empty({3, 4}, {.dtype = DType::f64})); },
              {"[matmul]", "same dtype", "float32", "float64"});
  check_error([] { matmul(ones({2, 3}, {.dtype = DType::i64}), ones({3, 4}, {.dtype = DType::i64})); },
              {"[matmul]", "floating", "int64"});
  check_error([] { matmul(Tensor(), empty({3})); }, {"[matmul]", "undefined"});
  check_error([] { linear(empty({2, 3}), empty({4, 5})); }, {"[linear]", "[2, 3]", "[4, 5]"});
  check_error([] { linear(empty({2, 5}), empty({5})); }, {"[linear]", "2-D"});
  check_error([] { linear(empty({2, 5}), empty({4, 5}), empty({3})); }, {"[linear]", "bias", "[3]"});
  check_error([] { linear(empty({2, 5}), empty({4, 5}, {.dtype = DType::bf16})); }, {"[linear]", "bfloat16"});
  const Tensor q = empty({1, 4, 3, 8}), k = empty({1, 3, 5, 8}), v = empty({1, 3, 5, 8});
  check_error([&] { scaled_dot_product_attention(q, k, v); }, {"[scaled_dot_product_attention]", "heads", "[1, 4, 3, 8]",
                                                              "[1, 3, 5, 8]"});
  check_error([] { scaled_dot_product_attention(empty({3, 8}), empty({5, 7}), empty({5, 2})); },
              {"[scaled_dot_product_attention]", "[3, 8]", "[5, 7]"});
  check_error([] { scaled_dot_product_attention(empty({3, 8}), empty({5, 8}), empty({4, 2})); },
              {"[scaled_dot_product_attention]", "[5, 8]", "[4, 2]"});
  check_error([] { scaled_dot_product_attention(empty({3, 8}), empty({5, 8}), empty({5, 2}), {.attn_mask = empty({3, 5}), .is_causal = true}); },
              {"[scaled_dot_product_attention]", "is_causal"});
  check_error([] { scaled_dot_product_attention(empty({3, 8}), empty({5, 8}), empty({5, 2}), {.attn_mask = ones({3, 5}, {.dtype = DType::i64})}); },
              {"[scaled_dot_product_attention]", "attn_mask", "int64"});
  check_error([] { scaled_dot_product_attention(empty({3, 8}), empty({5, 8}), empty({5, 2}), {.dropout_p = 1.5}); },
              {"[scaled_dot_product_attention]", "dropout_p"});
  check_error([] { scaled_dot_product_attention(empty({3, 8}), empty({5, 8}, {.dtype = DType::f64}), empty({5, 2})); },
              {"[scaled_dot_product_attention]", "float32", "float64"});
}
