// Quantization ops and the INT8 GEMM: quantize/dequantize against their formula evaluated
// independently (and values from torch 1.13), saturation far out of range, MinMaxObserver
// parameters, and quantized_matmul exact against an int64 reference on every kernel path this
// machine has (avx512_vnni, avx2, scalar), odd sizes, strided operands and extreme values.
// tests/parity/quantize_parity.py checks the same ops against torch on random data.
#include <omp.h>

#include <cstring>
#include <limits>
#include <random>

#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/cpu/gemm_int8.h"
#include "test_util.h"

using namespace keel;

namespace {

template <typename T> Tensor make(const std::vector<T>& values, Shape shape) {
  Tensor t = empty(shape, {.dtype = dtype_of_v<T>});
  REQUIRE(t.numel() == static_cast<int64_t>(values.size()));
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}

template <typename T> std::vector<T> values_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  std::vector<T> v(c.numel());
  if (!v.empty()) std::memcpy(v.data(), c.raw_data(), v.size() * sizeof(T));
  return v;
}

template <typename T> std::vector<T> random_ints(std::mt19937& rng, int64_t count, int lo, int hi) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<T> v(count);
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

// The quantize formula, written independently of the kernel: the quotient in f32 (the spec computes
// in f32), rounding and saturation in f64.
int64_t expected_quantized(float x, float scale, int64_t zero_point, int64_t qmin, int64_t qmax) {
  const float quotient = x / scale;
  if (std::isnan(quotient)) return qmin;
  const double q = std::rint(static_cast<double>(quotient)) + static_cast<double>(zero_point);
  return static_cast<int64_t>(std::clamp(q, static_cast<double>(qmin), static_cast<double>(qmax)));
}

// The kernel paths this machine runs, each forced through the CPU caps; restores the caps after.
struct PathCase {
  const char* isa;
  const char* disabled;
  const char* path;
};
std::vector<PathCase> available_paths() {
  std::vector<PathCase> cases;
  const cpu::CpuFeatures f = cpu::detected_cpu_features();
  if (f.avx512 && f.avx512_vnni) cases.push_back({"avx512", "", "avx512_vnni"});
  if (f.avx512) cases.push_back({"avx512", "avx512_vnni", "avx2"});
  if (f.avx2) cases.push_back({"avx2", "", "avx2"});
  cases.push_back({"baseline", "", "scalar"});
  return cases;
}
struct CapsGuard {
  ~CapsGuard() {
    cpu::set_cpu_isa("amx");
    cpu::set_cpu_disabled("");
  }
};

}  // namespace

TEST_CASE("quantize_per_tensor: the ONNX formula, round half to even", "[quantize]") {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> x(1000);
  for (auto& v : x) v = normal(rng);
  // Exact ties at scale 0.5: x / 0.5 = k + 0.5.
  for (int i = -6; i <= 6; ++i) x.push_back(0.25f * static_cast<float>(2 * i + 1));
  const Tensor xt = make(x, {static_cast<int64_t>(x.size())});
  for (const auto& [dtype, zero_point] : std::vector<std::pair<DType, int64_t>>{{u8, 0}, {u8, 128}, {u8, 3}, {i8, 0}, {i8, -5}}) {
    const int64_t qmin = dtype == u8 ? 0 : -128, qmax = dtype == u8 ? 255 : 127;
    for (const double scale : {0.5, 0.037, 1.0}) {
      const Tensor q = quantize_per_tensor(xt, scale, zero_point, dtype);
      REQUIRE(q.dtype() == dtype);
      std::vector<int64_t> got = values_of<int64_t>(q.to(i64));
      for (size_t i = 0; i < x.size(); ++i) {
        INFO("x " << x[i] << " scale " << scale << " zero point " << zero_point);
        REQUIRE(got[i] == expected_quantized(x[i], static_cast<float>(scale), zero_point, qmin, qmax));
      }
    }
  }
  // torch.quantize_per_tensor(tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 127.5, 128.5]), 1.0, 3, torch.quint8)
  const Tensor ties = tensor({0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 127.5, 128.5});
  CHECK(values_of<uint8_t>(quantize_per_tensor(ties, 1.0, 3, u8)) == std::vector<uint8_t>{3, 5, 5, 3, 1, 1, 131, 131});
  CHECK(values_of<int8_t>(quantize_per_tensor(ties, 1.0, 0, i8)) == std::vector<int8_t>{0, 2, 2, 0, -2, -2, 127, 127});
}

TEST_CASE("quantize_per_tensor saturates far out of range and maps NaN to the lowest value", "[quantize]") {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor x = make(std::vector<float>{1e30f, -1e30f, inf, -inf, 3e9f, -3e9f, nan, 1e10f, 255.4f, 255.6f}, {10});
  CHECK(values_of<uint8_t>(quantize_per_tensor(x, 1.0, 3, u8)) ==
        std::vector<uint8_t>{255, 0, 255, 0, 255, 0, 0, 255, 255, 255});
  CHECK(values_of<int8_t>(quantize_per_tensor(x, 1.0, 0, i8)) ==
        std::vector<int8_t>{127, -128, 127, -128, 127, -128, -128, 127, 127, 127});
  // A tiny scale makes every ordinary value overflow the f32 quotient.
  CHECK(values_of<uint8_t>(quantize_per_tensor(tensor({1.0, -1.0, 0.0}), 1e-38, 7, u8)) == std::vector<uint8_t>{255, 0, 7});
  // Other floating dtypes are converted to f32 first; non-contiguous inputs are read as they are.
  const Tensor grid = tensor({{0.1, 0.2, 0.3}, {-0.4, -0.5, 0.6}}, f64);
  CHECK(values_of<int8_t>(quantize_per_tensor(grid.t(), 0.1, 0, i8)) == std::vector<int8_t>{1, -4, 2, -5, 3, 6});
  CHECK(quantize_per_tensor(empty({0, 3}), 1.0, 0, u8).shape() == Shape{0, 3});
}

TEST_CASE("quantize_per_channel and dequantize along any axis", "[quantize]") {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> uniform(-20.0f, 20.0f);
  const Shape shape{3, 5, 7};
  std::vector<float> x(3 * 5 * 7);
  for (auto& v : x) v = uniform(rng);
  const Tensor xt = make(x, shape);
  for (const int64_t axis : {0, 1, 2, -1}) {
    const int64_t a = axis < 0 ? axis + 3 : axis, channels = shape[a];
    std::vector<float> scales(channels);
    std::vector<int64_t> zero_points(channels);
    for (int64_t c = 0; c < channels; ++c) {
      scales[c] = 0.05f + 0.07f * static_cast<float>(c);
      zero_points[c] = c * 20 - 40;
    }
    for (const DType dtype : {u8, i8}) {
      const int64_t qmin = dtype == u8 ? 0 : -128, qmax = dtype == u8 ? 255 : 127;
      std::vector<int64_t> zp = zero_points;
      for (auto& z : zp) z = std::clamp(z + (dtype == u8 ? 128 : 0), qmin, qmax);
      const Tensor scales_t = make(scales, {channels}), zp_t = make(zp, {channels});
      const Tensor q = quantize_per_channel(xt, scales_t, zp_t, axis, dtype);
      const Tensor back = dequantize_per_channel(q, scales_t, zp_t.to(i32), axis);
      const std::vector<int64_t> got = values_of<int64_t>(q.to(i64));
      const std::vector<float> restored = values_of<float>(back);
      for (int64_t i = 0; i < xt.numel(); ++i) {
        const int64_t index[3] = {i / 35, i / 7 % 5, i % 7};
        const int64_t c = index[a];
        INFO("axis " << axis << " element " << i);
        REQUIRE(got[i] == expected_quantized(x[i], scales[c], zp[c], qmin, qmax));
        REQUIRE(restored[i] == static_cast<float>(got[i] - zp[c]) * scales[c]);
        const double low = (qmin - zp[c]) * double(scales[c]), high = (qmax - zp[c]) * double(scales[c]);
        if (x[i] >= low && x[i] <= high) REQUIRE(std::fabs(restored[i] - x[i]) <= scales[c] * 0.5f * (1 + 1e-5f));
      }
    }
  }
}

TEST_CASE("dequantize_per_tensor: (q - zero_point) * scale", "[quantize]") {
  const Tensor q8 = make(std::vector<uint8_t>{0, 1, 128, 255}, {2, 2});
  CHECK(values_of<float>(dequantize_per_tensor(q8, 0.5, 128)) == std::vector<float>{-64.0f, -63.5f, 0.0f, 63.5f});
  const Tensor qs = make(std::vector<int8_t>{-128, -1, 0, 127}, {4});
  CHECK(values_of<float>(dequantize_per_tensor(qs, 0.25, 0)) == std::vector<float>{-32.0f, -0.25f, 0.0f, 31.75f});
  const Tensor q32 = make(std::vector<int32_t>{-1000000, 7}, {2});
  CHECK(values_of<float>(dequantize_per_tensor(q32, 0.5, 0)) == std::vector<float>{-500000.0f, 3.5f});
  CHECK(values_of<float>(dequantize_per_tensor(q8.t(), 1.0, 0)) == std::vector<float>{0, 128, 1, 255});
}

TEST_CASE("choose_qparams: PyTorch's MinMaxObserver", "[quantize]") {
  // torch.ao.quantization.MinMaxObserver(dtype=torch.quint8)(tensor([-1.0, 0.5, 3.0])).calculate_qparams()
  // -> (tensor([0.0156862754]), tensor([64]));   qscheme=torch.per_tensor_symmetric, qint8: (0.0235294122, 0)
  const Tensor x = tensor({-1.0, 0.5, 3.0});
  const QParams affine = choose_qparams_per_tensor(x, u8, QScheme::affine);
  CHECK(affine.scale == Approx(4.0 / 255).epsilon(1e-7));
  CHECK(affine.zero_point == 64);
  const QParams symmetric = choose_qparams_per_tensor(x, i8, QScheme::symmetric);
  CHECK(symmetric.scale == Approx(3.0 / 127.5).epsilon(1e-7));
  CHECK(symmetric.zero_point == 0);
  CHECK(choose_qparams_per_tensor(x, u8, QScheme::symmetric).zero_point == 128);
  // All zeros: scale is eps, not 0.
  CHECK(choose_qparams_per_tensor(zeros({4})).scale == std::numeric_limits<float>::epsilon());
  // Only positive values: min(x, 0) = 0, zero point qmin.
  CHECK(choose_qparams_per_tensor(tensor({1.0, 2.0}), i8).zero_point == -128);
  // Per channel (rows): each row's own range (torch gives the same, -127: -1 / (1 / 127.5) is -127.49999 in f32).
  const Tensor w = tensor({{-1.0, 0.5, 0.25}, {0.0, 2.0, -4.0}});
  const ChannelQParams per_row = choose_qparams_per_channel(w, 0);
  CHECK(values_of<float>(per_row.scales) == std::vector<float>{1.0f / 127.5f, 4.0f / 127.5f});
  CHECK(values_of<int64_t>(per_row.zero_points) == std::vector<int64_t>{0, 0});
  const Tensor q = quantize_per_channel(w, per_row.scales, per_row.zero_points, 0, i8);
  CHECK(values_of<int8_t>(q) == std::vector<int8_t>{-127, 64, 32, 0, 64, -127});
}

TEST_CASE("quantize ops: bad arguments name the op", "[quantize]") {
  const Tensor x = randn({3, 4});
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(quantize_per_tensor(x, 0.0, 0, u8), Contains("[quantize_per_tensor] scale must be positive"));
  CHECK_THROWS_WITH(quantize_per_tensor(x, -1.0, 0, u8), Contains("[quantize_per_tensor] scale must be positive"));
  CHECK_THROWS_WITH(quantize_per_tensor(x, std::nan(""), 0, u8), Contains("[quantize_per_tensor] scale"));
  CHECK_THROWS_WITH(quantize_per_tensor(x, 1.0, 0, f32), Contains("[quantize_per_tensor] the quantized dtype must be uint8 or int8"));
  CHECK_THROWS_WITH(quantize_per_tensor(x, 1.0, 256, u8), Contains("[quantize_per_tensor] zero point 256 is outside"));
  CHECK_THROWS_WITH(quantize_per_tensor(x, 1.0, -129, i8), Contains("outside the quantized range [-128, 127]"));
  CHECK_THROWS_WITH(quantize_per_tensor(x.to(i32), 1.0, 0, u8), Contains("[quantize_per_tensor] expected a floating input"));
  const Tensor s4 = ones({4}), z4 = zeros({4}, {.dtype = i64});
  CHECK_THROWS_WITH(quantize_per_channel(x, s4, z4, 0, i8), Contains("[quantize_per_channel] scales must be 1-D with 3 values"));
  CHECK_THROWS_WITH(quantize_per_channel(x, ones({3}), z4, 0, i8), Contains("zero_points must be 1-D with 3 values"));
  CHECK_THROWS_WITH(quantize_per_channel(x, s4, z4, 2, i8), Contains("[quantize_per_channel] dim 2 out of range"));
  CHECK_THROWS_WITH(quantize_per_channel(x, -s4, z4, 1, i8), Contains("[quantize_per_channel] every scale must be positive"));
  CHECK_THROWS_WITH(quantize_per_channel(x, s4, z4.to(f32), 1, i8), Contains("zero_points must be int32 or int64"));
  CHECK_THROWS_WITH(quantize_per_channel(x, s4, z4, 1, i32), Contains("[quantize_per_channel] the quantized dtype"));
  CHECK_THROWS_WITH(dequantize_per_tensor(x, 1.0, 0), Contains("[dequantize_per_tensor] expected a uint8, int8 or int32 input"));
  CHECK_THROWS_WITH(dequantize_per_channel(x.to(u8), ones({3}), z4, 1), Contains("[dequantize_per_channel] scales must be 1-D with 4"));
  CHECK_THROWS_WITH(choose_qparams_per_tensor(empty({0})), Contains("[choose_qparams_per_tensor] the input is empty"));
}

namespace {

// What quantized_matmul must give, from int64 sums.
struct MatmulCase {
  int64_t m, n, k;
  DType a_dtype = u8;
  int64_t a_zero_point = 0;
  bool per_channel = false;
  bool b_zero_points = false;  // nonzero zero points for b
  bool b_as_weight = false;    // b is weight.t() of an [N, K] weight (k contiguous)
  bool a_transposed = false;   // a is a transposed view
};

void check_matmul(const MatmulCase& mc, std::mt19937& rng) {
  const int64_t m = mc.m, n = mc.n, k = mc.k;
  INFO("M " << m << " N " << n << " K " << k << " a " << dtype_name(mc.a_dtype) << " za " << mc.a_zero_point
            << " per channel " << mc.per_channel << " zb " << mc.b_zero_points << " weight layout " << mc.b_as_weight
            << " a transposed " << mc.a_transposed);
  const bool a_signed = mc.a_dtype == i8;
  // a as int values a_val[i * k + p], b as b_val[p * n + j]
  std::vector<int64_t> a_val(m * k), b_val(k * n);
  std::uniform_int_distribution<int> a_dist(a_signed ? -128 : 0, a_signed ? 127 : 255), b_dist(-128, 127);
  for (auto& v : a_val) v = a_dist(rng);
  for (auto& v : b_val) v = b_dist(rng);
  Tensor a, b;
  {
    std::vector<int64_t> a_store(m * k);  // a or a^T, row-major
    for (int64_t i = 0; i < m; ++i)
      for (int64_t p = 0; p < k; ++p) a_store[mc.a_transposed ? p * m + i : i * k + p] = a_val[i * k + p];
    a = make(a_store, mc.a_transposed ? Shape{k, m} : Shape{m, k}).to(mc.a_dtype);
    if (mc.a_transposed) a = a.t();
    std::vector<int64_t> b_store(k * n);
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < n; ++j) b_store[mc.b_as_weight ? j * k + p : p * n + j] = b_val[p * n + j];
    b = make(b_store, mc.b_as_weight ? Shape{n, k} : Shape{k, n}).to(i8);
    if (mc.b_as_weight) b = b.t();
  }
  std::vector<float> b_scales(n);
  std::vector<int64_t> zb(n, 0);
  for (int64_t j = 0; j < n; ++j) {
    b_scales[j] = mc.per_channel ? 0.001f * static_cast<float>(1 + j % 13) : 0.004f;
    if (mc.b_zero_points) zb[j] = mc.per_channel ? (j * 37) % 256 - 128 : -7;
  }
  std::vector<float> bias(n);
  for (int64_t j = 0; j < n; ++j) bias[j] = 0.25f * static_cast<float>(j % 5) - 0.5f;
  QuantizedMatmulOptions options;
  options.a_scale = 0.02;
  options.a_zero_point = mc.a_zero_point;
  if (mc.per_channel) {
    options.b_scales = make(b_scales, {n});
    if (mc.b_zero_points) options.b_zero_points = make(zb, {n}).to(i32);
  } else {
    options.b_scale = b_scales[0];
    options.b_zero_point = zb[0];
  }
  // Every product also through the prepacked weight (packed for the path this call takes), which
  // must give the same bytes.
  const PackedInt8Weight packed = pack_quantized_weight(b.t());
  REQUIRE(packed.path() == cpu::gemm_int8_path());
  REQUIRE((packed.out_features() == n && packed.in_features() == k));
  auto quantized_matmul = [&](const Tensor& x, const Tensor& w, const QuantizedMatmulOptions& o) {
    const Tensor unpacked = keel::quantized_matmul(x, w, o);
    const Tensor prepacked = quantized_linear(x, packed, o);
    REQUIRE(prepacked.dtype() == unpacked.dtype());
    REQUIRE(prepacked.shape() == unpacked.shape());
    REQUIRE(std::memcmp(prepacked.raw_data(), unpacked.raw_data(), unpacked.numel() * dtype_size(unpacked.dtype())) == 0);
    return unpacked;
  };
  // int64 reference
  std::vector<int64_t> acc(m * n, 0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int64_t s = 0;
      for (int64_t p = 0; p < k; ++p) s += (a_val[i * k + p] - mc.a_zero_point) * (b_val[p * n + j] - zb[j]);
      acc[i * n + j] = s;
    }
  // i32: exact
  options.out_dtype = i32;
  const Tensor out32 = quantized_matmul(a, b, options);
  REQUIRE(out32.shape() == Shape{m, n});
  const std::vector<int32_t> got32 = values_of<int32_t>(out32);
  for (int64_t t = 0; t < m * n; ++t) {
    INFO("element " << t);
    REQUIRE(got32[t] == acc[t]);
  }
  // f32 with bias: the f32 epilogue against the f64 formula
  options.out_dtype = f32;
  options.bias = make(bias, {n});
  const std::vector<float> got = values_of<float>(quantized_matmul(a, b, options));
  for (int64_t t = 0; t < m * n; ++t) {
    const int64_t j = t % n;
    const double expected = 0.02 * double(b_scales[j]) * double(acc[t]) + bias[j];
    INFO("element " << t << " got " << got[t] << " expected " << expected);
    REQUIRE(std::fabs(got[t] - expected) <= 1e-5 + 1e-5 * std::fabs(expected));
    // and bit for bit the kernel's f32 epilogue: fma(f32(sum), f32(a_scale) * b_scale, bias), rounded once
    REQUIRE(got[t] == std::fma(static_cast<float>(acc[t]), 0.02f * b_scales[j], bias[j]));
  }
  // u8 / i8: bit-identical to quantizing the f32 result, within 1 of the f64 formula
  const Tensor f32_out = quantized_matmul(a, b, options);
  for (const DType out_dtype : {u8, i8}) {
    options.out_dtype = out_dtype;
    options.out_scale = 0.05;
    options.out_zero_point = out_dtype == u8 ? 120 : -3;
    const Tensor q = quantized_matmul(a, b, options);
    REQUIRE(q.dtype() == out_dtype);
    const Tensor expected_q = quantize_per_tensor(f32_out, 0.05, options.out_zero_point, out_dtype);
    const std::vector<int64_t> got_q = values_of<int64_t>(q.to(i64)), want_q = values_of<int64_t>(expected_q.to(i64));
    for (int64_t t = 0; t < m * n; ++t) {
      INFO("element " << t);
      REQUIRE(got_q[t] == want_q[t]);
      const int64_t j = t % n, qmin = out_dtype == u8 ? 0 : -128, qmax = out_dtype == u8 ? 255 : 127;
      const double real = 0.02 * double(b_scales[j]) * double(acc[t]) + bias[j];
      const double ideal = std::clamp(std::rint(real / 0.05) + double(options.out_zero_point), double(qmin), double(qmax));
      REQUIRE(std::fabs(double(got_q[t]) - ideal) <= 1);
    }
  }
}

}  // namespace

TEST_CASE("quantized_matmul: exact against int64 sums on every kernel path", "[quantize][gemm_int8]") {
  CapsGuard restore;
  std::mt19937 rng(3);
  const std::vector<int64_t> sizes = {1, 7, 33, 65, 257};
  for (const PathCase& path : available_paths()) {
    cpu::set_cpu_isa(path.isa);
    cpu::set_cpu_disabled(path.disabled);
    REQUIRE(cpu::gemm_int8_path() == path.path);
    SECTION(std::string("path ") + path.path + " (" + path.isa + (path.disabled[0] ? " without " : "") + path.disabled + ")") {
      // Every size in every role, per tensor and per channel, both B layouts.
      for (const int64_t size : sizes) {
        check_matmul({.m = size, .n = 33, .k = 65, .a_zero_point = 3}, rng);
        check_matmul({.m = 7, .n = size, .k = 33, .a_zero_point = 200, .per_channel = true, .b_as_weight = true}, rng);
        check_matmul({.m = 65, .n = 7, .k = size, .a_zero_point = 0, .per_channel = true}, rng);
      }
      check_matmul({.m = 257, .n = 257, .k = 257, .a_zero_point = 128, .per_channel = true, .b_as_weight = true}, rng);
      // k tail (not a multiple of 4) with the weight layout, zero points everywhere, s8 activations,
      // transposed activations, blocks deeper than one KC block
      check_matmul({.m = 33, .n = 65, .k = 1031, .a_zero_point = 17, .per_channel = true, .b_zero_points = true,
                    .b_as_weight = true}, rng);
      check_matmul({.m = 7, .n = 65, .k = 33, .a_dtype = i8, .a_zero_point = -9, .b_zero_points = true}, rng);
      check_matmul({.m = 13, .n = 70, .k = 130, .a_dtype = i8, .a_zero_point = 5, .per_channel = true,
                    .b_zero_points = true, .b_as_weight = true, .a_transposed = true}, rng);
      check_matmul({.m = 65, .n = 129, .k = 66, .a_zero_point = 1, .a_transposed = true}, rng);
      // deeper than one K block of the VNNI path (4096): partial sums wait in a tile buffer
      check_matmul({.m = 13, .n = 67, .k = 4099, .a_zero_point = 100, .per_channel = true, .b_zero_points = true,
                    .b_as_weight = true}, rng);
    }
  }
}

TEST_CASE("quantized_matmul: several K blocks (the last one's epilogue fused), every output dtype", "[quantize][gemm_int8]") {
  // K = 4100 (a last block of one k group) and 8200 (two full blocks of the VNNI path and a short
  // third), with and without B zero points, per tensor and per channel, rows of the output on and
  // off 64-byte lines (N = 64, 67), on every path.
  CapsGuard restore;
  std::mt19937 rng(11);
  for (const PathCase& path : available_paths()) {
    cpu::set_cpu_isa(path.isa);
    cpu::set_cpu_disabled(path.disabled);
    REQUIRE(cpu::gemm_int8_path() == path.path);
    SECTION(std::string("path ") + path.path + " (" + path.isa + (path.disabled[0] ? " without " : "") + path.disabled + ")") {
      for (const int64_t k : {4100, 8200})
        for (const bool zero_points : {false, true}) {
          check_matmul({.m = 13, .n = 67, .k = k, .a_zero_point = 100, .per_channel = true, .b_zero_points = zero_points,
                        .b_as_weight = true}, rng);
          check_matmul({.m = 8, .n = 64, .k = k, .a_zero_point = 3, .b_zero_points = zero_points}, rng);
        }
    }
  }
}

TEST_CASE("quantized_matmul: extreme values at the deepest K allowed stay exact", "[quantize][gemm_int8]") {
  CapsGuard restore;
  for (const PathCase& path : available_paths()) {
    cpu::set_cpu_isa(path.isa);
    cpu::set_cpu_disabled(path.disabled);
    INFO("path " << path.path << " isa " << path.isa);
    const int64_t m = 2, n = 17;
    struct Extreme {
      int a_value, a_zero_point, b_value, b_zero_point;
    };
    for (const Extreme& x : {Extreme{255, 0, -128, 0}, Extreme{255, 0, 127, 0}, Extreme{0, 255, 127, -128},
                             Extreme{255, 0, 127, -128}, Extreme{255, 255, -128, 127}}) {
      const int64_t max_abs_a = std::max(x.a_zero_point, 255 - x.a_zero_point);
      const int64_t max_abs_b = std::max(x.b_zero_point + 128, 127 - x.b_zero_point);
      const int64_t k = std::numeric_limits<int32_t>::max() / (max_abs_a * max_abs_b);
      INFO("a " << x.a_value << " za " << x.a_zero_point << " b " << x.b_value << " zb " << x.b_zero_point << " K " << k);
      const Tensor a = full({m, k}, x.a_value, {.dtype = u8});
      const Tensor b = full({n, k}, x.b_value, {.dtype = i8}).t();
      QuantizedMatmulOptions options{.a_zero_point = x.a_zero_point, .b_zero_point = x.b_zero_point, .out_dtype = i32};
      const int64_t expected = k * (x.a_value - x.a_zero_point) * (x.b_value - x.b_zero_point);
      REQUIRE(std::llabs(expected) <= std::numeric_limits<int32_t>::max());
      for (const int32_t v : values_of<int32_t>(quantized_matmul(a, b, options))) REQUIRE(v == expected);
      // The f32 output of the same sum.
      options.out_dtype = f32;
      options.a_scale = 1e-9;
      for (const float v : values_of<float>(quantized_matmul(a, b, options)))
        REQUIRE(v == Approx(1e-9 * double(expected)).epsilon(1e-6));
      // One deeper is refused, naming the bound.
      const Tensor deeper = full({m, k + 1}, x.a_value, {.dtype = u8});
      options.out_dtype = i32;
      CHECK_THROWS_WITH(quantized_matmul(deeper, full({k + 1, n}, x.b_value, {.dtype = i8}), options),
                        Catch::Matchers::Contains("K must be at most " + std::to_string(k)));
    }
  }
}

TEST_CASE("quantized_matmul: batched activations, empty operands, quantized_linear", "[quantize][gemm_int8]") {
  std::mt19937 rng(4);
  const Tensor x = make(random_ints<uint8_t>(rng, 2 * 3 * 10, 0, 255), {2, 3, 10});
  const Tensor w = make(random_ints<int8_t>(rng, 4 * 10, -128, 127), {4, 10});
  QuantizedMatmulOptions options{.a_zero_point = 9, .out_dtype = i32};
  const Tensor y = quantized_linear(x, w, options);
  REQUIRE(y.shape() == Shape{2, 3, 4});
  const std::vector<int32_t> got = values_of<int32_t>(y);
  const std::vector<uint8_t> xv = values_of<uint8_t>(x);
  const std::vector<int8_t> wv = values_of<int8_t>(w);
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t j = 0; j < 4; ++j) {
      int64_t s = 0;
      for (int64_t p = 0; p < 10; ++p) s += (xv[r * 10 + p] - 9) * int64_t{wv[j * 10 + p]};
      REQUIRE(got[r * 4 + j] == s);
    }
  // 1-D activations, K = 0, M = 0
  CHECK(quantized_matmul(x.select(0, 0).select(0, 1), w.t(), options).shape() == Shape{4});
  const std::vector<int32_t> zero = values_of<int32_t>(quantized_matmul(empty({3, 0}, {.dtype = u8}), empty({0, 5}, {.dtype = i8}), options));
  CHECK(zero == std::vector<int32_t>(15, 0));
  CHECK(quantized_matmul(empty({0, 4}, {.dtype = u8}), empty({4, 5}, {.dtype = i8})).shape() == Shape{0, 5});
}

TEST_CASE("quantized_matmul: bad arguments name the op", "[quantize][gemm_int8]") {
  using Catch::Matchers::Contains;
  const Tensor a = zeros({3, 4}, {.dtype = u8}), b = zeros({4, 5}, {.dtype = i8});
  CHECK_THROWS_WITH(quantized_matmul(a.to(f32), b), Contains("[quantized_matmul] the first operand (activations) must be uint8 or int8"));
  CHECK_THROWS_WITH(quantized_matmul(a, b.to(u8)), Contains("[quantized_matmul] the second operand (weights) must be int8"));
  CHECK_THROWS_WITH(quantized_matmul(a, zeros({5, 5}, {.dtype = i8})), Contains("[quantized_matmul] shapes cannot be multiplied: got [3, 4] and [5, 5]"));
  CHECK_THROWS_WITH(quantized_matmul(a, zeros({4}, {.dtype = i8})), Contains("must be 2-D [K, N]"));
  CHECK_THROWS_WITH(quantized_matmul(a, b, {.b_scales = ones({4})}), Contains("[quantized_matmul] scales must be 1-D with 5 values"));
  CHECK_THROWS_WITH(quantized_matmul(a, b, {.b_zero_points = zeros({5}, {.dtype = i64}) + 200}), Contains("zero point 200 is outside"));
  CHECK_THROWS_WITH(quantized_matmul(a, b, {.a_scale = 0}), Contains("[quantized_matmul] a_scale must be positive"));
  CHECK_THROWS_WITH(quantized_matmul(a, b, {.a_zero_point = -1}), Contains("a_zero_point -1 is outside the quantized range [0, 255]"));
  CHECK_THROWS_WITH(quantized_matmul(a, b, {.bias = ones({5}), .out_dtype = i32}), Contains("a bias cannot be added to the int32 output"));
  CHECK_THROWS_WITH(quantized_matmul(a, b, {.bias = ones({4})}), Contains("bias must be 1-D with 5 values"));
  CHECK_THROWS_WITH(quantized_matmul(a, b, {.out_dtype = f64}), Contains("out_dtype must be float32, int32, uint8 or int8"));
  CHECK_THROWS_WITH(quantized_matmul(a, b, {.out_dtype = u8, .out_zero_point = 300}), Contains("out_zero_point 300 is outside"));
  CHECK_THROWS_WITH(quantized_linear(a, zeros({4}, {.dtype = i8})), Contains("[quantized_linear] weight must be 2-D"));
}

TEST_CASE("pack_quantized_weight: prepacked results equal unpacked ones; bad inputs throw", "[quantize][gemm_int8]") {
  using Catch::Matchers::Contains;
  CapsGuard restore;
  std::mt19937 rng(5);
  const Tensor w = make(random_ints<int8_t>(rng, 70 * 37, -128, 127), {70, 37});
  const Tensor x = make(random_ints<uint8_t>(rng, 3 * 5 * 37, 0, 255), {3, 5, 37});
  const QuantizedMatmulOptions options{.a_scale = 0.1, .a_zero_point = 7, .b_scale = 0.01, .b_zero_point = 3};
  for (const PathCase& path : available_paths()) {
    cpu::set_cpu_isa(path.isa);
    cpu::set_cpu_disabled(path.disabled);
    INFO("path " << path.path);
    const PackedInt8Weight packed = pack_quantized_weight(w);
    CHECK(packed.path() == path.path);
    // Batched activations, and a packed weight used many times.
    for (int repeat = 0; repeat < 2; ++repeat) {
      const Tensor y = quantized_linear(x, packed, options);
      REQUIRE(y.shape() == Shape{3, 5, 70});
      REQUIRE(values_of<float>(y) == values_of<float>(quantized_linear(x, w, options)));
    }
    // A copy shares the packed data.
    const PackedInt8Weight copy = packed;
    CHECK(values_of<float>(quantized_linear(x, copy, options)) == values_of<float>(quantized_linear(x, w, options)));
    // K mismatch
    CHECK_THROWS_WITH(quantized_linear(make(random_ints<uint8_t>(rng, 2 * 36, 0, 255), {2, 36}), packed, options),
                      Contains("[quantized_linear] the input's last dim must be in_features = 37 of the packed weight [70, 37], got input shape [2, 36]"));
    // Per-channel parameters of the wrong length, and the K bound, are checked as for the unpacked weight.
    CHECK_THROWS_WITH(quantized_linear(x, packed, {.b_scales = ones({37})}), Contains("[quantized_linear] scales must be 1-D with 70 values"));
  }
  // Packed for one path, used on another: an error, never a silent repack or a wrong result.
  const std::vector<PathCase> paths = available_paths();
  for (size_t p = 0; p + 1 < paths.size(); ++p) {
    cpu::set_cpu_isa(paths[p].isa);
    cpu::set_cpu_disabled(paths[p].disabled);
    const PackedInt8Weight packed = pack_quantized_weight(w);
    const PathCase& other = paths[p + 1];
    cpu::set_cpu_isa(other.isa);
    cpu::set_cpu_disabled(other.disabled);
    if (cpu::gemm_int8_path() == packed.path()) continue;
    CHECK_THROWS_WITH(quantized_linear(x, packed, options),
                      Contains(std::string("[quantized_linear] the weight was packed for the ") + paths[p].path +
                               " kernel path but this call takes " + other.path));
  }
  cpu::set_cpu_isa("amx");
  cpu::set_cpu_disabled("");
  // Bad weights and an undefined packed weight.
  CHECK_THROWS_WITH(pack_quantized_weight(w.to(u8)), Contains("[pack_quantized_weight] the weight must be int8"));
  CHECK_THROWS_WITH(pack_quantized_weight(w.select(0, 0)), Contains("[pack_quantized_weight] the weight must be 2-D"));
  CHECK_THROWS_WITH(quantized_linear(x, PackedInt8Weight{}, options), Contains("[quantized_linear] the packed weight is undefined"));
  // Empty shapes: no rows, no depth.
  const PackedInt8Weight packed = pack_quantized_weight(w);
  CHECK(quantized_linear(empty({0, 37}, {.dtype = u8}), packed).shape() == Shape{0, 70});
  const PackedInt8Weight shallow = pack_quantized_weight(empty({4, 0}, {.dtype = i8}));
  CHECK(values_of<int32_t>(quantized_linear(empty({2, 0}, {.dtype = u8}), shallow, {.out_dtype = i32})) == std::vector<int32_t>(8, 0));
}

TEST_CASE("quantized_linear: prepacked weights on 1 and 2 threads, calls of changing sizes", "[quantize][gemm_int8]") {
  // The kernel keeps grow-only scratch per thread (epilogue vectors, packed A, tile buffers) and
  // gives each of 2 threads one rectangle of the output when the weight is prepacked (a run of
  // rows or of 64-column strips): calls of shrinking and growing sizes, with and without zero
  // points (row sums), one and several K blocks, must stay exact on every path.
  CapsGuard restore;
  std::mt19937 rng(11);
  struct Shape3 {
    int64_t m, k, n;
    bool zero_points;
  };
  // rows split, columns split, one thread, several K blocks (K > 4096), wide N, rows split again.
  const std::vector<Shape3> shapes = {{257, 300, 131, true},  {64, 784, 256, false}, {5, 33, 17, true},
                                      {13, 4100, 60, true},   {200, 64, 520, false}, {7, 1000, 700, true},
                                      {257, 300, 131, false}, {64, 784, 256, true}};
  const int threads = omp_get_max_threads();
  for (const PathCase& path : available_paths()) {
    cpu::set_cpu_isa(path.isa);
    cpu::set_cpu_disabled(path.disabled);
    std::mt19937 data_rng(17);
    for (const Shape3& s : shapes) {
      INFO("path " << path.path << ", " << s.m << " x " << s.k << " -> " << s.n << (s.zero_points ? ", zero points" : ""));
      const std::vector<uint8_t> a_val = random_ints<uint8_t>(data_rng, s.m * s.k, 0, 255);
      const std::vector<int8_t> w_val = random_ints<int8_t>(data_rng, s.n * s.k, -128, 127);
      const Tensor x = make(a_val, {s.m, s.k}), w = make(w_val, {s.n, s.k});
      std::vector<int64_t> zb(s.n, 0);
      if (s.zero_points)
        for (int64_t j = 0; j < s.n; ++j) zb[j] = (j * 29) % 255 - 127;
      QuantizedMatmulOptions options{.a_scale = 0.03, .a_zero_point = s.zero_points ? 100 : 0, .b_scale = 0.002};
      if (s.zero_points) {
        options.b_scales = full({s.n}, 0.002);
        options.b_zero_points = make(zb, {s.n}).to(DType::i32);
      }
      std::vector<int64_t> acc(s.m * s.n);
      for (int64_t i = 0; i < s.m; ++i)
        for (int64_t j = 0; j < s.n; ++j) {
          int64_t sum = 0;
          for (int64_t p = 0; p < s.k; ++p)
            sum += (int64_t{a_val[i * s.k + p]} - options.a_zero_point) * (int64_t{w_val[j * s.k + p]} - zb[j]);
          acc[i * s.n + j] = sum;
        }
      const PackedInt8Weight packed = pack_quantized_weight(w);
      for (const int t : {1, 2}) {
        omp_set_num_threads(t);
        INFO("threads " << t);
        QuantizedMatmulOptions o = options;
        o.out_dtype = DType::i32;
        const std::vector<int32_t> got = values_of<int32_t>(quantized_linear(x, packed, o));
        for (int64_t e = 0; e < s.m * s.n; ++e) {
          INFO("element " << e);
          REQUIRE(got[e] == acc[e]);
        }
        for (const DType out : {DType::f32, DType::u8}) {
          o.out_dtype = out;
          o.out_scale = 0.5;
          o.out_zero_point = 9;
          o.bias = full({s.n}, 0.25);
          const Tensor prepacked = quantized_linear(x, packed, o), unpacked = quantized_linear(x, w, o);
          REQUIRE(std::memcmp(prepacked.raw_data(), unpacked.raw_data(), unpacked.numel() * dtype_size(out)) == 0);
        }
      }
      omp_set_num_threads(threads);
    }
  }
}

TEST_CASE("gemm_int8: outputs that start off a 64-byte line, every shift, the same bytes", "[quantize][gemm_int8]") {
  // The fused epilogue writes f32 / s32 rows that are off 64-byte lines line by line when K is
  // small (vpermt2d, aligned masked stores): an output that starts s elements past a line, with a
  // row stride of N (64, 80: every row at the same shift; 67: shifts that change row by row),
  // must hold exactly what the same product writes to an output on a line, and nothing may be
  // written outside [out, out + M x N).
  CapsGuard restore;
  std::mt19937 rng(5);
  for (const PathCase& path : available_paths()) {
    cpu::set_cpu_isa(path.isa);
    cpu::set_cpu_disabled(path.disabled);
    for (const int64_t k : {4, 33, 48, 200})
      for (const int64_t n : {64, 67, 80}) {
        const int64_t m = 13;
        const std::vector<uint8_t> a = random_ints<uint8_t>(rng, m * k, 0, 255);
        const std::vector<int8_t> b = random_ints<int8_t>(rng, n * k, -128, 127);
        std::vector<int64_t> acc(m * n);
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            int64_t sum = 0;
            for (int64_t p = 0; p < k; ++p) sum += (int64_t{a[i * k + p]} - 7) * int64_t{b[j * k + p]};
            acc[i * n + j] = sum;
          }
        cpu::Int8GemmArgs args;
        args.m = m, args.n = n, args.k = k;
        args.a = a.data(), args.a_row_stride = k, args.a_col_stride = 1, args.a_zero_point = 7, args.a_scale = 0.01f;
        args.b = b.data(), args.b_n_stride = k, args.b_k_stride = 1;
        const float b_scale = 0.003f;
        args.b_scales = &b_scale;
        args.out_row_stride = n;
        const cpu::Int8PackedB packed = cpu::pack_int8_b(b.data(), n, k, k, 1);
        for (const bool prepacked : {false, true}) {
          args.packed_b = prepacked ? &packed : nullptr;
          for (const cpu::Int8GemmOutput output : {cpu::Int8GemmOutput::s32, cpu::Int8GemmOutput::f32}) {
            args.output = output;
            // 64-byte aligned storage with 16 guard elements before and after the output
            std::vector<int32_t> on_line(m * n + 64), off_line(m * n + 64);
            int32_t* aligned = reinterpret_cast<int32_t*>((reinterpret_cast<uintptr_t>(on_line.data()) + 63) & ~uintptr_t(63));
            args.out = aligned;
            cpu::gemm_int8(args);
            for (int64_t t = 0; t < m * n; ++t) {
              INFO("path " << path.path << " K " << k << " N " << n << " element " << t);
              if (output == cpu::Int8GemmOutput::s32) REQUIRE(aligned[t] == acc[t]);
            }
            for (int64_t shift = 1; shift < 16; ++shift) {
              INFO("path " << path.path << " K " << k << " N " << n << " prepacked " << prepacked << " shift " << shift
                            << " output " << int(output));
              int32_t* base = reinterpret_cast<int32_t*>((reinterpret_cast<uintptr_t>(off_line.data()) + 63) & ~uintptr_t(63));
              std::fill(off_line.begin(), off_line.end(), 0x5a5a5a5a);
              args.out = base + shift;
              cpu::gemm_int8(args);
              REQUIRE(std::memcmp(base + shift, aligned, m * n * sizeof(int32_t)) == 0);
              for (int32_t* p = off_line.data(); p < base + shift; ++p) REQUIRE(*p == 0x5a5a5a5a);
              for (int32_t* p = base + shift + m * n; p < off_line.data() + off_line.size(); ++p) REQUIRE(*p == 0x5a5a5a5a);
            }
          }
        }
      }
  }
}
