// The CUDA backend against the CPU kernels: every op family (unary, binary with broadcasting
// and non-contiguous inputs, where, clamp, copy between dtypes, fill, reductions and arg
// reductions, Philox draws), host <-> device copies, and the caching allocator's statistics.
// The CPU results are themselves tested against the float64 reference (tests/ops), so here a
// CUDA result must equal the CPU's up to the dtype's tolerance (exactly where no rounding is
// involved: copies, conversions, comparisons, integer math, min/max, indices, uniform draws).
// Every test needs a device and skips with a warning without one; the last test checks the
// error a CUDA tensor gives on a machine without a device.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/cuda/cuda_kernels.h"
#include "test_util.h"

using namespace keel;
using namespace keel::test;

namespace {

const Device kCuda = Device::cuda(0);
constexpr Tolerance kExact{0.0, 0.0};
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Shapes for elementwise ops: the standard odd sizes, 2-D and 3-D, and one long enough for
// several grid-stride iterations and a vector tail.
const std::vector<Shape> kShapes = {{0}, {1}, {31}, {32}, {33}, {257}, {7, 33}, {3, 5, 17}, {100003}};

std::string describe(const std::string& what, const Shape& shape, DType dtype) {
  return what + " " + to_string(shape) + " " + std::string(dtype_name(dtype));
}

// A CUDA result against the CPU result of the same computation.
void check_same(const Tensor& gpu, const Tensor& cpu, Tolerance tol, const std::string& what) {
  INFO(what);
  REQUIRE(gpu.is_cuda());
  REQUIRE(cpu.is_cpu());
  REQUIRE(gpu.dtype() == cpu.dtype());
  check_matches(gpu, reference::from_tensor(cpu), tol, what);
}
void check_same(const Tensor& gpu, const Tensor& cpu, const std::string& what) {
  check_same(gpu, cpu, tolerance_for(cpu.dtype()), what);
}

// x on the device in three layouts: contiguous, non-contiguous (transposed or strided), and
// starting one element into its storage (misaligned for the vectorized path).
std::vector<std::pair<std::string, Tensor>> device_layouts(const Tensor& x) {
  const Tensor device_x = x.to(kCuda);
  std::vector<std::pair<std::string, Tensor>> result = {{"contiguous", device_x},
                                                        {"non-contiguous", non_contiguous(device_x)}};
  if (x.dim() >= 1) {
    Shape longer = x.shape();
    longer[0] += 1;
    Tensor shifted = zeros(longer, device_x.options()).slice(0, 1, longer[0]);
    shifted.copy_(device_x);
    result.push_back({"offset by one", shifted});
  }
  return result;
}

struct UnaryCase {
  std::string name;
  std::function<Tensor(const Tensor&)> f;
  double low, high;  // input range
  bool takes_bool;
};

const std::vector<UnaryCase>& unary_cases() {
  static const std::vector<UnaryCase> cases = {
      {"neg", [](const Tensor& x) { return neg(x); }, -3, 3, false},
      {"abs", [](const Tensor& x) { return abs(x); }, -3, 3, true},
      {"exp", [](const Tensor& x) { return exp(x); }, -3, 3, true},
      {"log", [](const Tensor& x) { return log(x); }, 0.1, 5, true},
      {"log1p", [](const Tensor& x) { return log1p(x); }, -0.5, 5, true},
      {"expm1", [](const Tensor& x) { return expm1(x); }, -3, 3, true},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0, 5, true},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, 0.1, 5, true},
      {"sin", [](const Tensor& x) { return sin(x); }, -4, 4, true},
      {"cos", [](const Tensor& x) { return cos(x); }, -4, 4, true},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -3, 3, true},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -5, 5, true},
      {"relu", [](const Tensor& x) { return relu(x); }, -3, 3, false},
      {"gelu", [](const Tensor& x) { return gelu(x); }, -3, 3, true},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, GeluApproximation::tanh); }, -3, 3, true},
      {"silu", [](const Tensor& x) { return silu(x); }, -3, 3, true},
      {"erf", [](const Tensor& x) { return erf(x); }, -3, 3, true},
      {"logical_not", [](const Tensor& x) { return logical_not(x); }, -2, 2, true},
      {"isnan", [](const Tensor& x) { return isnan(x); }, -2, 2, true},
      {"isinf", [](const Tensor& x) { return isinf(x); }, -2, 2, true},
  };
  return cases;
}

struct BinaryCase {
  std::string name;
  std::function<Tensor(const Tensor&, const Tensor&)> f;
  bool takes_bool;
};

const std::vector<BinaryCase>& binary_cases() {
  static const std::vector<BinaryCase> cases = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, true},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, false},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, true},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, true},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }, true},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }, true},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }, true},
      {"eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); }, true},
      {"ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); }, true},
      {"lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); }, true},
      {"le", [](const Tensor& a, const Tensor& b) { return le(a, b); }, true},
      {"gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); }, true},
      {"ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); }, true},
      {"logical_and", [](const Tensor& a, const Tensor& b) { return logical_and(a, b); }, true},
      {"logical_or", [](const Tensor& a, const Tensor& b) { return logical_or(a, b); }, true},
      {"logical_xor", [](const Tensor& a, const Tensor& b) { return logical_xor(a, b); }, true},
  };
  return cases;
}

// Floating special values (NaN, infinities, signed zeros, out-of-range for integers) in a
// 1-D tensor of dtype, rotated left by `rotate` places (to pair them up differently).
Tensor special_values(DType dtype, size_t rotate = 0) {
  std::vector<double> values = {kNaN,  kInf,  -kInf, 0.0,   -0.0, 0.5,   -0.5, 1.5,     2.5,     -2.5,
                                127.5, 128.0, 255.5, 300.0, -129.0, 1e10, -1e10, 65504.0, 70000.0, 1e-8};
  std::rotate(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(rotate % values.size()), values.end());
  Tensor result = empty({static_cast<int64_t>(values.size())}, {DType::f64});
  for (size_t i = 0; i < values.size(); ++i) result.data_ptr<double>()[i] = values[i];
  return result.to(dtype);
}

// The keepdim shape of reducing `dims` (empty = all) of `shape`.
Shape kept_shape(const Shape& shape, const Dims& dims) {
  Shape result = shape;
  for (size_t d = 0; d < shape.size(); ++d) {
    bool reduced = dims.empty();
    for (int64_t r : dims) reduced = reduced || wrap_dim(r, static_cast<int64_t>(shape.size()), "test") == static_cast<int64_t>(d);
    if (reduced) result[d] = 1;
  }
  return result;
}

Dims wrapped_dims(const Shape& shape, const Dims& dims) {
  Dims result;
  for (size_t d = 0; d < shape.size(); ++d) {
    bool reduced = dims.empty();
    for (int64_t r : dims) reduced = reduced || wrap_dim(r, static_cast<int64_t>(shape.size()), "test") == static_cast<int64_t>(d);
    if (reduced) result.push_back(static_cast<int64_t>(d));
  }
  return result;
}

// Tolerance of a sum of `count` terms: the dtype's, with the absolute part grown like the
// rounding error of the f32 (CUDA) against the f64 (CPU) accumulation.
Tolerance sum_tolerance(DType dtype, int64_t count) {
  const Tolerance base = tolerance_for(dtype);
  return {base.atol * 4 * std::sqrt(static_cast<double>(std::max<int64_t>(count, 1))) + base.atol, base.rtol};
}

struct ReduceShape {
  Shape shape;
  Dims dims;
};

// Each kernel path: a thread per row (short rows), a warp per row, a block per row, a block
// per chunk of a row with a second pass (few long rows), permuted copies, empty reductions.
const std::vector<ReduceShape>& reduce_shapes() {
  static const std::vector<ReduceShape> shapes = {
      {{}, {}},           {{1}, {}},           {{257}, {}},        {{257}, {0}},       {{4, 5, 6}, {}},
      {{4, 5, 6}, {0}},   {{4, 5, 6}, {1}},    {{4, 5, 6}, {-1}},  {{4, 5, 6}, {0, 2}}, {{33, 31}, {1}},
      {{20000, 5}, {1}},  {{64, 1000}, {1}},   {{1000, 64}, {0}},  {{3, 70000}, {1}},  {{2, 9000}, {1}},
      {{1 << 20}, {}},    {{3, 0, 4}, {1}},    {{0, 5}, {1}},
  };
  return shapes;
}

}  // namespace

// ---- host <-> device -------------------------------------------------------------------------

TEST_CASE("tensors round-trip between host and device unchanged", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  for (DType dtype : kAllDTypes) {
    for (const Shape& shape : kShapes) {
      const Tensor x = random_tensor(shape, dtype);
      const Tensor device_x = x.to(kCuda);
      REQUIRE(device_x.is_cuda());
      REQUIRE(device_x.dtype() == dtype);
      check_matches(device_x.cpu(), reference::from_tensor(x), kExact, describe("round trip", shape, dtype));
      // Device to device: a clone and a copy_ into a non-contiguous destination.
      check_matches(device_x.clone().cpu(), reference::from_tensor(x), kExact, describe("clone", shape, dtype));
      if (x.dim() >= 1) {
        Tensor strided = non_contiguous(device_x);
        check_matches(strided.cpu(), reference::from_tensor(x), kExact, describe("strided to host", shape, dtype));
        Tensor destination = non_contiguous(zeros(shape, {dtype, kCuda}));
        destination.copy_(non_contiguous(x));  // strided host -> strided device
        check_matches(destination.cpu(), reference::from_tensor(x), kExact, describe("strided to device", shape, dtype));
      }
    }
  }
  // Host to device with a dtype change, and raw memcpy entry points.
  const Tensor x = random_tensor({7, 33}, DType::f64);
  check_matches(x.to(kCuda, DType::f32).cpu(), reference::from_tensor(x.to(DType::f32)), kExact, "to(cuda, f32)");
  std::vector<float> host(1000), back(1000, 0.0f);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i) * 0.25f - 7.0f;
  Tensor buffer = empty({1000}, {DType::f32, kCuda});
  Tensor other = empty({1000}, {DType::f32, kCuda});
  cuda::memcpy_host_to_device(buffer.raw_data(), host.data(), 1000 * sizeof(float), 0);
  cuda::memcpy_device_to_device(other.raw_data(), 0, buffer.raw_data(), 0, 1000 * sizeof(float));
  cuda::memcpy_device_to_host(back.data(), other.raw_data(), 1000 * sizeof(float), 0);
  CHECK(back == host);
}

// ---- elementwise -----------------------------------------------------------------------------

TEST_CASE("unary ops on CUDA match the CPU", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  for (const UnaryCase& op : unary_cases()) {
    for (DType dtype : kAllDTypes) {
      if (dtype == DType::bool_ && !op.takes_bool) continue;
      const bool is_unsigned = dtype == DType::u8 || dtype == DType::bool_;
      for (const Shape& shape : kShapes) {
        const Tensor x = random_tensor(shape, dtype, is_unsigned ? std::max(0.0, op.low) : op.low, op.high);
        const Tensor expected = op.f(x);
        for (const auto& [layout, device_x] : device_layouts(x)) {
          check_same(op.f(device_x), expected, describe(op.name + " " + layout, shape, dtype));
        }
      }
    }
    // NaN, infinities and signed zeros.
    for (DType dtype : kFloatDTypes) {
      const Tensor x = special_values(dtype);
      check_same(op.f(x.to(kCuda)), op.f(x), describe(op.name + " special values", x.shape(), dtype));
    }
  }
}

TEST_CASE("in-place unary and binary ops on CUDA write through views", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  for (DType dtype : kFloatDTypes) {
    const Tensor x = random_tensor({7, 33}, dtype);
    Tensor host = x.clone();
    Tensor device = non_contiguous(x.to(kCuda));
    exp_(host);
    exp_(device);
    check_same(device, host, describe("exp_", x.shape(), dtype));
    const Tensor b = random_tensor({33}, dtype);
    host += b;
    device += b.to(kCuda);
    check_same(device, host, describe("+= broadcast", x.shape(), dtype));
    host *= 2.5;
    device *= 2.5;
    check_same(device, host, describe("*= scalar", x.shape(), dtype));
  }
}

TEST_CASE("binary ops on CUDA match the CPU with broadcasting and strided inputs", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  struct Pair {
    Shape a, b;
  };
  const std::vector<Pair> pairs = {{{0}, {0}},        {{1}, {1}},          {{31}, {31}},   {{33}, {}},
                                   {{}, {257}},       {{257}, {257}},      {{7, 33}, {33}}, {{4, 1, 33}, {5, 1}},
                                   {{7, 1}, {1, 33}}, {{100003}, {100003}}, {{3, 5, 17}, {3, 1, 17}}};
  for (const BinaryCase& op : binary_cases()) {
    for (DType dtype : kAllDTypes) {
      if (dtype == DType::bool_ && !op.takes_bool) continue;
      for (const Pair& pair : pairs) {
        const bool positive_base = op.name == "pow" && is_floating(dtype);
        const Tensor a = random_tensor(pair.a, dtype, positive_base ? 0.1 : -2.0, 2.0);
        const Tensor b = random_tensor(pair.b, dtype, -2.0, 2.0);
        const Tensor expected = op.f(a, b);
        const Tensor device_a = a.to(kCuda), device_b = b.to(kCuda);
        const std::string what = op.name + " " + to_string(pair.a) + " with " + to_string(pair.b);
        check_same(op.f(device_a, device_b), expected, describe(what, {}, dtype));
        check_same(op.f(non_contiguous(device_a), non_contiguous(device_b)), expected,
                   describe(what + " non-contiguous", {}, dtype));
        check_same(op.f(device_layouts(a).back().second, device_b), expected, describe(what + " offset", {}, dtype));
      }
      // A Python-style scalar operand on either side.
      const Tensor a = random_tensor({7, 33}, dtype, 0.5, 2.0);
      const Tensor scalar = scalar_tensor(dtype == DType::bool_ ? Scalar(true) : Scalar(2), dtype);
      check_same(op.f(a.to(kCuda), scalar.to(kCuda)), op.f(a, scalar), describe(op.name + " scalar", {7, 33}, dtype));
      check_same(op.f(scalar.to(kCuda), a.to(kCuda)), op.f(scalar, a), describe(op.name + " scalar lhs", {7, 33}, dtype));
    }
    // Every pair of special values (NaN, infinities, zeros, huge) meets once per rotation.
    for (DType dtype : kFloatDTypes) {
      for (size_t rotate = 0; rotate < 20; ++rotate) {
        const Tensor a = special_values(dtype), b = special_values(dtype, rotate);
        check_same(op.f(a.to(kCuda), b.to(kCuda)), op.f(a, b),
                   describe(op.name + " special values, rotation " + std::to_string(rotate), a.shape(), dtype));
      }
    }
  }
}

TEST_CASE("where on CUDA matches the CPU", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  for (DType dtype : kAllDTypes) {
    for (const Shape& shape : kShapes) {
      const Tensor condition = random_tensor(shape, DType::bool_);
      const Tensor a = random_tensor(shape, dtype), b = random_tensor(shape, dtype);
      check_same(where(condition.to(kCuda), a.to(kCuda), b.to(kCuda)), where(condition, a, b),
                 describe("where", shape, dtype));
      check_same(where(non_contiguous(condition.to(kCuda)), non_contiguous(a.to(kCuda)), b.to(kCuda)),
                 where(condition, a, b), describe("where non-contiguous", shape, dtype));
    }
    // Broadcast condition, a tensor against a 0-D tensor.
    const Tensor condition = random_tensor({4, 1, 33}, DType::bool_);
    const Tensor a = random_tensor({5, 33}, dtype), b = random_tensor({}, dtype);
    check_same(where(condition.to(kCuda), a.to(kCuda), b.to(kCuda)), where(condition, a, b),
               describe("where broadcast", {4, 5, 33}, dtype));
  }
}

TEST_CASE("clamp on CUDA matches the CPU", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  for (DType dtype : kAllDTypes) {
    if (dtype == DType::bool_) continue;
    for (const Shape& shape : kShapes) {
      const Tensor x = random_tensor(shape, dtype, -3.0, 3.0);
      for (const auto& [layout, device_x] : device_layouts(x)) {
        check_same(clamp(device_x, -1, 1), clamp(x, -1, 1), describe("clamp " + layout, shape, dtype));
        check_same(clamp_min(device_x, 0), clamp_min(x, 0), describe("clamp_min " + layout, shape, dtype));
        check_same(clamp_max(device_x, 1), clamp_max(x, 1), describe("clamp_max " + layout, shape, dtype));
      }
    }
    // Tensor bounds that broadcast.
    const Tensor x = random_tensor({7, 33}, dtype, -3.0, 3.0);
    const Tensor low = random_tensor({33}, dtype, -2.0, 0.0), high = random_tensor({7, 1}, dtype, 0.0, 2.0);
    check_same(clamp(x.to(kCuda), low.to(kCuda), high.to(kCuda)), clamp(x, low, high),
               describe("clamp tensor bounds", x.shape(), dtype));
  }
  for (DType dtype : kFloatDTypes) {
    const Tensor x = special_values(dtype);
    check_same(clamp(x.to(kCuda), -1, 1), clamp(x, -1, 1), describe("clamp special values", x.shape(), dtype));
  }
}

TEST_CASE("copy on CUDA converts between every pair of dtypes like the CPU", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  for (DType from : kAllDTypes) {
    const Tensor values = random_tensor({7, 33}, from, -200.0, 200.0);
    const Tensor special = is_floating(from) ? special_values(from) : random_tensor({20}, from);
    for (DType to : kAllDTypes) {
      for (const Tensor& x : {values, special}) {
        const std::string what = std::string(dtype_name(from)) + " -> " + std::string(dtype_name(to));
        const Tensor expected = x.to(to);
        for (const auto& [layout, device_x] : device_layouts(x)) {
          check_same(device_x.to(to), expected, kExact, what + " " + layout);
        }
      }
      // copy_ with broadcasting into a strided destination.
      const Tensor row = random_tensor({33}, from, -100.0, 100.0);
      Tensor host = zeros({7, 33}, {to});
      host.copy_(row);
      Tensor device = non_contiguous(zeros({7, 33}, {to, kCuda}));
      device.copy_(row.to(kCuda));
      check_same(device, host, kExact, "broadcast copy_ " + std::string(dtype_name(from)) + " -> " +
                                           std::string(dtype_name(to)));
    }
  }
}

TEST_CASE("fill on CUDA matches the CPU", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  for (DType dtype : kAllDTypes) {
    for (const Scalar& value : {Scalar(2.5), Scalar(-3), Scalar(true), Scalar(0), Scalar(1e10)}) {
      for (const Shape& shape : kShapes) {
        check_same(full(shape, value, {dtype, kCuda}), full(shape, value, {dtype}), kExact,
                   describe("full", shape, dtype));
      }
      // fill_ of a strided view writes only the view.
      Tensor host = zeros({7, 33}, {dtype});
      Tensor device = zeros({7, 33}, {dtype, kCuda});
      host.slice(1, 1, 33, 3).fill_(value);
      device.slice(1, 1, 33, 3).fill_(value);
      check_same(device, host, kExact, describe("fill_ strided view", {7, 33}, dtype));
    }
  }
}

// ---- reductions ------------------------------------------------------------------------------

TEST_CASE("reductions on CUDA match the CPU", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  const std::vector<DType> dtypes = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64,
                                     DType::u8,  DType::bool_};
  for (const ReduceShape& c : reduce_shapes()) {
    const int64_t count = shape_numel(c.shape) / std::max<int64_t>(1, shape_numel(kept_shape(c.shape, c.dims)));
    const bool long_rows = shape_numel(c.shape) > 100000;
    for (DType dtype : dtypes) {
      if (long_rows && dtype != DType::f32 && dtype != DType::i32 && dtype != DType::bool_) continue;
      const Tensor x = random_tensor(c.shape, dtype);
      for (bool keepdim : {false, true}) {
        for (const auto& [layout, device_x] : device_layouts(x)) {
          const std::string what = describe(layout, c.shape, dtype) + " dims " + to_string(c.dims) +
                                   (keepdim ? " keepdim" : "");
          check_same(sum(device_x, c.dims, keepdim), sum(x, c.dims, keepdim), sum_tolerance(sum(x).dtype(), count),
                     "sum " + what);
          check_same(all(device_x, c.dims, keepdim), all(x, c.dims, keepdim), kExact, "all " + what);
          check_same(any(device_x, c.dims, keepdim), any(x, c.dims, keepdim), kExact, "any " + what);
          if (x.numel() > 0) {
            check_same(amax(device_x, c.dims, keepdim), amax(x, c.dims, keepdim), kExact, "amax " + what);
            check_same(amin(device_x, c.dims, keepdim), amin(x, c.dims, keepdim), kExact, "amin " + what);
          }
          if (!long_rows) {
            // Values near 1 keep long products finite.
            const Tensor near_one = random_tensor(c.shape, DType::f64, 0.9, 1.1).to(is_floating(dtype) ? dtype : DType::f64);
            check_same(prod(near_one.to(kCuda), c.dims, keepdim), prod(near_one, c.dims, keepdim),
                       sum_tolerance(near_one.dtype(), count), "prod " + what);
            if (!is_floating(dtype)) {
              check_same(prod(device_x, c.dims, keepdim), prod(x, c.dims, keepdim), kExact, "integer prod " + what);
            }
          }
          if (is_floating(dtype) && x.numel() > 0) {
            check_same(mean(device_x, c.dims, keepdim), mean(x, c.dims, keepdim), sum_tolerance(dtype, count),
                       "mean " + what);
          }
        }
      }
    }
  }
}

TEST_CASE("reductions on CUDA convert x to the result dtype while reading", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  struct Mixed {
    ReduceOp op;
    DType in, out;
  };
  const std::vector<Mixed> mixed = {
      {ReduceOp::sum, DType::f16, DType::f32}, {ReduceOp::sum, DType::bf16, DType::f32},
      {ReduceOp::sum, DType::i32, DType::i64}, {ReduceOp::sum, DType::bool_, DType::i64},
      {ReduceOp::sum, DType::u8, DType::i64},  {ReduceOp::sum, DType::f32, DType::f64},
      {ReduceOp::prod, DType::i8, DType::i64}, {ReduceOp::amax, DType::i32, DType::f32},
      {ReduceOp::all, DType::f32, DType::bool_}, {ReduceOp::any, DType::i8, DType::bool_},
      {ReduceOp::any, DType::f16, DType::bool_}, {ReduceOp::all, DType::i64, DType::u8},
  };
  for (const Mixed& m : mixed) {
    for (const ReduceShape& c : reduce_shapes()) {
      if (shape_numel(c.shape) > 100000) continue;
      const Tensor x = random_tensor(c.shape, m.in, -3.0, 3.0);
      if (m.op == ReduceOp::amax && x.numel() == 0) continue;
      const Dims dims = wrapped_dims(c.shape, c.dims);
      const Shape out_shape = kept_shape(c.shape, c.dims);
      Tensor host = empty(out_shape, {m.out});
      Tensor device = empty(out_shape, {m.out, kCuda});
      cpu::reduce(m.op, host, x, dims);
      cuda::reduce(m.op, device, x.to(kCuda), dims);
      const int64_t count = x.numel() / std::max<int64_t>(1, host.numel());
      check_same(device, host, sum_tolerance(m.out, count),
                 describe("reduce op " + std::to_string(static_cast<int>(m.op)) + " from " +
                              std::string(dtype_name(m.in)),
                          c.shape, m.out));
    }
  }
}

TEST_CASE("amax and amin on CUDA propagate NaN", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  for (DType dtype : kFloatDTypes) {
    for (const Shape& shape : std::vector<Shape>{{3, 10}, {3, 9000}, {3, 70000}}) {
      Tensor x = random_tensor(shape, DType::f64);
      x.select(0, 1).narrow(0, shape[1] / 2, 1).fill_(kNaN);
      x.select(0, 2).narrow(0, shape[1] - 1, 1).fill_(kNaN);
      x = x.to(dtype);
      const Tensor device_x = x.to(kCuda);
      check_same(amax(device_x, {1}), amax(x, {1}), kExact, describe("amax NaN", shape, dtype));
      check_same(amin(device_x, {1}), amin(x, {1}), kExact, describe("amin NaN", shape, dtype));
      check_same(sum(device_x, {1}), sum(x, {1}), sum_tolerance(dtype, shape[1]), describe("sum NaN", shape, dtype));
      const Tensor row_nan = amax(device_x, {1}).cpu().to(DType::f64);
      CHECK(!std::isnan(row_nan.data_ptr<double>()[0]));
      CHECK(std::isnan(row_nan.data_ptr<double>()[1]));
      CHECK(std::isnan(row_nan.data_ptr<double>()[2]));
    }
  }
}

TEST_CASE("arg reductions on CUDA match the CPU: first extreme, first NaN", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  const std::vector<DType> dtypes = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8,
                                     DType::u8,  DType::i32, DType::i64};
  struct ArgShape {
    Shape shape;
    int64_t dim;
  };
  const std::vector<ArgShape> shapes = {{{1}, 0},        {{257}, 0},        {{4, 5, 6}, 0},  {{4, 5, 6}, 1},
                                        {{4, 5, 6}, -1}, {{20000, 5}, 1},   {{64, 1000}, 1}, {{1000, 64}, 0},
                                        {{3, 70000}, 1}, {{2, 9000}, -1}};
  for (DType dtype : dtypes) {
    for (const ArgShape& c : shapes) {
      const Tensor x = random_tensor(c.shape, dtype, -2.0, 2.0);
      // Integers in [-3, 3]: few distinct values, so that ties are everywhere and the first
      // index must win.
      const Tensor small = is_floating(dtype) ? random_tensor(c.shape, DType::i32, -0.3, 0.3).to(dtype) : x;
      for (const Tensor& input : {x, small}) {
        for (const auto& [layout, device_x] : device_layouts(input)) {
          const std::string what = describe("arg " + layout, c.shape, dtype) + " dim " + std::to_string(c.dim);
          check_same(argmax(device_x, c.dim), argmax(input, c.dim), kExact, "argmax " + what);
          check_same(argmin(device_x, c.dim, true), argmin(input, c.dim, true), kExact, "argmin keepdim " + what);
          const ValuesIndices device_max = max(device_x, c.dim);
          const ValuesIndices host_max = max(input, c.dim);
          check_same(device_max.values, host_max.values, kExact, "max values " + what);
          check_same(device_max.indices, host_max.indices, kExact, "max indices " + what);
          const ValuesIndices device_min = min(device_x, c.dim, true);
          const ValuesIndices host_min = min(input, c.dim, true);
          check_same(device_min.values, host_min.values, kExact, "min values " + what);
          check_same(device_min.indices, host_min.indices, kExact, "min indices " + what);
        }
        check_same(argmax(input.to(kCuda)), argmax(input), kExact, describe("argmax flat", c.shape, dtype));
      }
    }
  }
  // NaN: the first NaN wins over everything, in short and long rows.
  for (DType dtype : kFloatDTypes) {
    for (int64_t length : {10, 9000, 70000}) {
      Tensor x = random_tensor({3, length}, DType::f64);
      x.select(0, 1).narrow(0, length / 3, 1).fill_(kNaN);
      x.select(0, 1).narrow(0, length / 2, 1).fill_(kNaN);
      x.select(0, 2).narrow(0, length - 1, 1).fill_(kNaN);
      x = x.to(dtype);
      const Tensor device_indices = argmax(x.to(kCuda), 1).cpu();
      check_same(argmax(x.to(kCuda), 1), argmax(x, 1), kExact, describe("argmax NaN", x.shape(), dtype));
      check_same(argmin(x.to(kCuda), 1), argmin(x, 1), kExact, describe("argmin NaN", x.shape(), dtype));
      CHECK(device_indices.data_ptr<int64_t>()[1] == length / 3);
      CHECK(device_indices.data_ptr<int64_t>()[2] == length - 1);
    }
  }
}

// ---- indexing --------------------------------------------------------------------------------

TEST_CASE("gather, scatter, scatter_add and index_select on CUDA match the CPU", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  for (DType dtype : kAllDTypes) {
    const Tensor x = random_tensor({6, 7, 5}, dtype);
    const Tensor device_x = x.to(kCuda);
    for (int64_t dim : {0, 1, 2, -1}) {
      const int64_t wrapped = dim < 0 ? dim + 3 : dim;
      Shape index_shape = {5, 6, 4};
      index_shape[wrapped] = 9;  // longer than x along dim: repeated indices
      const Tensor index = randint(0, x.shape()[wrapped], index_shape);
      const Tensor device_index = index.to(kCuda);
      const std::string what = describe("dim " + std::to_string(dim), x.shape(), dtype);
      check_same(gather(device_x, dim, device_index), gather(x, dim, index), kExact, "gather " + what);
      check_same(gather(non_contiguous(device_x), dim, non_contiguous(device_index)), gather(x, dim, index), kExact,
                 "gather non-contiguous " + what);
      // Scatter: repeated indices, the later position wins (on both devices, by construction).
      Shape self_shape = {6, 7, 5};
      self_shape[wrapped] = 3;
      const Tensor self = random_tensor(self_shape, dtype);
      const Tensor small_index = randint(0, 3, index_shape);
      const Tensor source = random_tensor(index_shape, dtype);
      check_same(scatter(self.to(kCuda), dim, small_index.to(kCuda), source.to(kCuda)),
                 scatter(self, dim, small_index, source), kExact, "scatter " + what);
      check_same(scatter(self.to(kCuda), dim, small_index.to(kCuda), Scalar(3)),
                 scatter(self, dim, small_index, Scalar(3)), kExact, "scatter scalar " + what);
      // scatter_add adds in the CPU's order on the device too: equal bit for bit.
      check_same(scatter_add(self.to(kCuda), dim, small_index.to(kCuda), non_contiguous(source.to(kCuda))),
                 scatter_add(self, dim, small_index, source), kExact, "scatter_add " + what);
      Tensor in_place = non_contiguous(self.to(kCuda));
      Tensor host_in_place = self.clone();
      scatter_add_(in_place, dim, small_index.to(kCuda), source.to(kCuda));
      scatter_add_(host_in_place, dim, small_index, source);
      check_same(in_place, host_in_place, kExact, "scatter_add_ into a strided view " + what);
      for (DType index_dtype : {DType::i64, DType::i32}) {
        const Tensor select_index = randint(0, x.shape()[wrapped], {11}, {index_dtype});
        check_same(index_select(device_x, dim, select_index.to(kCuda)), index_select(x, dim, select_index), kExact,
                   "index_select " + std::string(dtype_name(index_dtype)) + " " + what);
      }
    }
  }
  // A bad index throws before anything is written.
  const Tensor x = arange(0, 12, 1, {DType::f32}).view({3, 4});
  Tensor device_self = x.to(kCuda);
  const Tensor bad = tensor({{0, 1, 3, 0}}, DType::i64).to(kCuda);  // 3 is out of bounds for dim 0 (size 3)
  REQUIRE_THROWS_AS(gather(device_self, 0, bad), Error);
  REQUIRE_THROWS_AS(scatter_(device_self, 0, bad, ones({1, 4}, {DType::f32, kCuda})), Error);
  REQUIRE_THROWS_AS(index_select(device_self, 1, tensor({0, 4}, DType::i64).to(kCuda)), Error);
  REQUIRE_THROWS_AS(index_select(device_self, 1, tensor({-1}, DType::i64).to(kCuda)), Error);
  check_same(device_self, x, kExact, "untouched after a bad index");
}

// ---- more than 2^31 elements -------------------------------------------------------------------

TEST_CASE("CUDA kernels index tensors of more than 2^31 elements", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  // 2^31 + 6 bytes: past every 32-bit element index (the strided kernel's 64-bit path, the
  // vector loop's tail, a reduction's chunk offsets, an arg reduction's column index).
  const int64_t n = (int64_t{1} << 31) + 6, half = n / 2;
  Tensor x;
  try {
    x = empty({n}, {DType::u8, kCuda});
  } catch (const Error& error) {
    WARN("large-tensor check skipped: the device cannot hold 2^31 bytes (" << error.what() << ")");
    return;
  }
  x.fill_(1);                       // contiguous, vectorized: 16 bytes per load, 6 in the tail
  x.narrow(0, n - 3, 1).fill_(5);   // element 2^31 + 3
  x.narrow(0, 0, 1).fill_(0);
  CHECK(amax(x).item<int64_t>() == 5);
  CHECK(amin(x).item<int64_t>() == 0);
  CHECK(argmax(x).item<int64_t>() == n - 3);
  CHECK(sum(x.narrow(0, n - 6, 6).cpu().to(DType::i64)).item<int64_t>() == 10);
  // Strided, 64-bit indices: the [half, 2] transpose of x viewed as [2, half]. Element n - 3 of
  // x is (1, half - 3) of the view, so (half - 3, 1) of y: flat index 2 * (half - 3) + 1.
  const Tensor y = add(x.view({2, half}).t(), x.view({2, half}).t());
  REQUIRE(y.is_contiguous());
  CHECK(argmax(y.flatten()).item<int64_t>() == 2 * (half - 3) + 1);
  CHECK(amax(y).item<int64_t>() == 10);
  CHECK(argmin(y.flatten()).item<int64_t>() == 0);
  CHECK(sum(y.narrow(0, half - 4, 2).cpu().to(DType::i64)).item<int64_t>() == 2 + 2 + 2 + 10);
}

// ---- a second device --------------------------------------------------------------------------

TEST_CASE("tensors on cuda:1 run on device 1", "[cuda]") {
  if (keel::cuda::device_count() < 2) { WARN("multi-device check skipped: fewer than two CUDA devices"); return; }
  const Device second = Device::cuda(1);
  const Tensor x = random_tensor({7, 33}, DType::f32), y = random_tensor({33}, DType::f32);
  const MemoryStats before = cuda::memory_stats(1);
  const Tensor dx = x.to(second), dy = y.to(second);
  REQUIRE(dx.device() == second);
  CHECK(cuda::memory_stats(1).allocated_bytes > before.allocated_bytes);
  const Tensor out = add(exp(non_contiguous(dx)), dy);
  REQUIRE(out.device() == second);
  check_same(out, add(exp(x), y), "exp + add on cuda:1");
  check_same(sum(dx, {1}), sum(x, {1}), sum_tolerance(DType::f32, 33), "sum on cuda:1");
  check_same(argmax(dx, 1), argmax(x, 1), kExact, "argmax on cuda:1");
  check_same(index_select(dx, 1, tensor({3, 0, 32}, DType::i64).to(second)),
             index_select(x, 1, tensor({3, 0, 32}, DType::i64)), kExact, "index_select on cuda:1");
  Generator host_generator(5), device_generator(5);
  check_same(rand({1000}, {DType::f32, second}, &device_generator), rand({1000}, {DType::f32}, &host_generator),
             kExact, "rand on cuda:1");
  // Between devices, both ways, into a strided destination.
  check_same(dx.to(kCuda), x, kExact, "cuda:1 -> cuda:0");
  Tensor back = non_contiguous(zeros({7, 33}, {DType::f32, second}));
  back.copy_(x.to(kCuda));
  check_same(back, x, kExact, "cuda:0 -> strided cuda:1");
}

// ---- random draws ----------------------------------------------------------------------------

TEST_CASE("rand, randn and randint on CUDA draw the CPU's numbers for the same seed", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  for (const Shape& shape : std::vector<Shape>{{0}, {1}, {31}, {32}, {33}, {257}, {7, 33}, {100001}}) {
    for (DType dtype : kFloatDTypes) {
      Generator host_generator(1234), device_generator(1234);
      // Two draws each, so that the generator offsets also agree.
      for (int round = 0; round < 2; ++round) {
        check_same(rand(shape, {dtype, kCuda}, &device_generator), rand(shape, {dtype}, &host_generator), kExact,
                   describe("rand round " + std::to_string(round), shape, dtype));
        // Normal draws use logf/sinf/cosf, whose CUDA versions may differ from the C library's
        // by a few ulp (2^-24 each); the f32 value is then rounded to dtype.
        const Tolerance normal =
            dtype == DType::f64 || dtype == DType::f32 ? Tolerance{1e-6, 4e-6} : tolerance_for(dtype);
        check_same(randn(shape, {dtype, kCuda}, &device_generator), randn(shape, {dtype}, &host_generator), normal,
                   describe("randn round " + std::to_string(round), shape, dtype));
      }
    }
    for (DType dtype : {DType::i64, DType::i32, DType::u8, DType::f32, DType::f64}) {
      Generator host_generator(99), device_generator(99);
      const int64_t low = dtype == DType::u8 ? 0 : -50;
      check_same(randint(low, 200, shape, {dtype, kCuda}, &device_generator),
                 randint(low, 200, shape, {dtype}, &host_generator), kExact, describe("randint", shape, dtype));
    }
  }
  // The default generator too: same seed, same numbers.
  manual_seed(7);
  const Tensor host = rand({1000});
  manual_seed(7);
  check_same(rand({1000}, {DType::f32, kCuda}), host, kExact, "rand with manual_seed");
}

// ---- the caching allocator -------------------------------------------------------------------

TEST_CASE("the CUDA caching allocator reuses blocks and keeps statistics", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  cuda::synchronize();
  cuda::empty_cache();
  const MemoryStats start = cuda::memory_stats(0);
  CHECK(start.reserved_bytes == start.allocated_bytes);  // nothing cached after empty_cache

  void* first_pointer = nullptr;
  {
    const Tensor a = empty({1000}, {DType::f32, kCuda});  // 4000 bytes -> a 4096-byte block
    first_pointer = a.raw_data();
    const MemoryStats s = cuda::memory_stats(0);
    CHECK(s.allocated_bytes == start.allocated_bytes + 4096);
    CHECK(s.num_allocations == start.num_allocations + 1);
    CHECK(s.num_device_mallocs == start.num_device_mallocs + 1);  // the cache was empty: a miss
    CHECK(s.reserved_bytes == start.reserved_bytes + 4096);
    CHECK(s.peak_allocated_bytes >= s.allocated_bytes);
  }
  {
    const MemoryStats s = cuda::memory_stats(0);
    CHECK(s.allocated_bytes == start.allocated_bytes);
    CHECK(s.reserved_bytes == start.reserved_bytes + 4096);  // kept in the cache, not cudaFree'd
  }
  {
    // Same size class (4001..4096 bytes): the freed block comes back without a cudaMalloc.
    const Tensor b = empty({1020}, {DType::f32, kCuda});
    const MemoryStats s = cuda::memory_stats(0);
    CHECK(b.raw_data() == first_pointer);
    CHECK(s.num_device_mallocs == start.num_device_mallocs + 1);
    CHECK(s.num_allocations == start.num_allocations + 2);
  }
  {
    // Size classes: 1 byte takes 512; 3 MiB takes 4 MiB.
    const MemoryStats before = cuda::memory_stats(0);
    const Tensor tiny = empty({1}, {DType::u8, kCuda});
    CHECK(cuda::memory_stats(0).allocated_bytes == before.allocated_bytes + 512);
    const Tensor large = empty({3 << 20}, {DType::u8, kCuda});
    CHECK(cuda::memory_stats(0).allocated_bytes == before.allocated_bytes + 512 + (4 << 20));
  }
  {
    // Peak: a temporary 64 MiB tensor raises it; reset brings it back to what is allocated.
    cuda::reset_peak_memory_stats(0);
    const MemoryStats before = cuda::memory_stats(0);
    CHECK(before.peak_allocated_bytes == before.allocated_bytes);
    { const Tensor big = empty({16 << 20}, {DType::f32, kCuda}); }
    const MemoryStats after = cuda::memory_stats(0);
    CHECK(after.peak_allocated_bytes >= before.allocated_bytes + (64 << 20));
    CHECK(after.allocated_bytes == before.allocated_bytes);
    cuda::reset_peak_memory_stats(0);
    CHECK(cuda::memory_stats(0).peak_allocated_bytes == cuda::memory_stats(0).allocated_bytes);
  }
  // empty_cache returns every cached block to the driver.
  cuda::empty_cache();
  CHECK(cuda::memory_stats(0).reserved_bytes == cuda::memory_stats(0).allocated_bytes);
  CHECK(cuda::memory_stats(0).allocated_bytes == start.allocated_bytes);
}

TEST_CASE("the CUDA allocator is thread-safe and reports out-of-memory clearly", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  const MemoryStats start = cuda::memory_stats(0);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      try {
        std::vector<Tensor> kept;
        for (int i = 0; i < 500; ++i) {
          kept.push_back(empty({(i * 37 + t * 101) % 5000 + 1}, {DType::f32, kCuda}));
          if (kept.size() > 8) kept.erase(kept.begin());
        }
      } catch (...) {
        ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(failures == 0);
  CHECK(cuda::memory_stats(0).allocated_bytes == start.allocated_bytes);
  CHECK(cuda::memory_stats(0).num_allocations == start.num_allocations + 2000);

  // 2^50 bytes cannot be allocated: a keel::Error naming the sizes, and no stats change.
  try {
    empty({int64_t{1} << 48}, {DType::f32, kCuda});
    FAIL("no error");
  } catch (const Error& error) {
    const std::string message = error.what();
    INFO(message);
    CHECK(message.find("out of memory") != std::string::npos);
    CHECK(message.find("allocated") != std::string::npos);
    CHECK(message.find("reserved") != std::string::npos);
  }
  CHECK(cuda::memory_stats(0).allocated_bytes == start.allocated_bytes);
  CHECK(cuda::memory_stats(0).num_allocations == start.num_allocations + 2000);  // the failure is not counted
  // The device still works after the failure.
  check_same(ones({5}, {DType::f32, kCuda}) * 2, ones({5}) * 2, kExact, "after out-of-memory");
}

// ---- errors ----------------------------------------------------------------------------------

TEST_CASE("CUDA misuse gives keel::Error", "[cuda]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  REQUIRE_THROWS_AS(empty({2}, {DType::f32, Device::cuda(cuda::device_count())}), Error);
  REQUIRE_THROWS_AS(add(ones({2}), ones({2}, {DType::f32, kCuda})), Error);
  REQUIRE_THROWS_AS(where(ones({2}, {DType::bool_}), ones({2}, {DType::f32, kCuda}), ones({2}, {DType::f32, kCuda})),
                    Error);
}

TEST_CASE("without a CUDA device, CUDA tensors give a clear keel::Error", "[cuda]") {
  if (keel::cuda::is_available()) {
    WARN("skipped: this machine has a CUDA device, the no-device path is not exercised");
    return;
  }
  CHECK(cuda::device_count() == 0);
  try {
    empty({2, 3}, {DType::f32, kCuda});
    FAIL("no error");
  } catch (const Error& error) {
    INFO(error.what());
    CHECK(std::string(error.what()).find("CUDA") != std::string::npos);
  }
  REQUIRE_THROWS_AS(ones({2}).to(kCuda), Error);
  REQUIRE_THROWS_AS(cuda::synchronize(), Error);
}
