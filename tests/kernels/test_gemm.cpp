// The CPU GEMM (kernels/cpu/gemm.isa.cpp) on every path this machine can run, forced through the
// caps: avx512 (14x32 kernel; bf16 and f16 converted to f32 panels), avx512 with the vdpbf16ps
// kernel for bf16 (cpu::set_gemm_bf16_dot), avx512 without AVX512-BF16, avx2 (6x16 kernel),
// baseline (6x8). f32, bf16 and f16 against float64 references
// computed from the operands as rounded to their dtype: odd sizes (1, 7, 31, 33, 65, 257 for M, N,
// K), transposed / strided / expanded operands, batches with broadcast, K = 0, empty outputs, sizes
// that take the multi-threaded team path (rows split and B-strip split), and linear's fused
// epilogue (bias, relu, gelu, gelu_tanh, silu; bias per row when the kernel computes the
// transposed product) with gradcheck / gradgradcheck of its vjp.
#include <cmath>
#include <string>

#include "keel/autograd/gradcheck.h"
#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include "gemm_check.h"
#include "test_util.h"

using namespace keel;
using namespace keel::test;
using reference::RefTensor;

namespace {

// Restores the uncapped state after a test changes it.
struct ResetCaps {
  ~ResetCaps() {
    cpu::set_cpu_isa("amx");
    cpu::set_cpu_disabled("");
    cpu::set_gemm_bf16_dot(false);
  }
};

struct Path {
  std::string name, isa, disabled;
  bool bf16_dot = false;
};

// Every kernel path this machine has.
std::vector<Path> paths() {
  const cpu::CpuFeatures have = cpu::detected_cpu_features();
  std::vector<Path> out = {{"baseline", "baseline", ""}};
  if (have.avx2) out.push_back({"avx2", "avx2", ""});
  if (have.avx512 && have.avx512_bf16) out.push_back({"avx512 without avx512_bf16", "avx512", "avx512_bf16"});
  if (have.avx512) out.push_back({"avx512", "avx512", ""});
  if (have.avx512 && have.avx512_bf16) out.push_back({"avx512 with the vdpbf16ps kernel", "avx512", "", true});
  return out;
}

void use(const Path& path) {
  cpu::set_cpu_isa(path.isa);
  cpu::set_cpu_disabled(path.disabled);
  cpu::set_gemm_bf16_dot(path.bf16_dot);
}

void check_matmul(const Tensor& a, const Tensor& b, const std::string& what) {
  check_product(matmul(a, b), a, b, Tensor(), Activation::none, what);
}

std::string dims(int64_t m, int64_t k, int64_t n) {
  return std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n);
}

const std::vector<DType> kGemmDTypes = {DType::f32, DType::bf16, DType::f16};

}  // namespace

TEST_CASE("gemm: odd sizes on every kernel path and 16-bit dtype", "[gemm]") {
  ResetCaps reset;
  for (const Path& path : paths()) {
    use(path);
    for (DType dtype : kGemmDTypes) {
      const std::string prefix = path.name + " " + std::string(dtype_name(dtype)) + " ";
      for (int64_t m : {1, 7, 31, 33, 65, 257})
        for (int64_t n : {1, 7, 31, 33, 65, 257})
          for (int64_t k : {1, 33, 257}) {
            if (m * n * k > 257 * 65 * 257) continue;  // keeps the float64 reference quick
            const Tensor a = random_tensor({m, k}, dtype), b = random_tensor({k, n}, dtype);
            check_matmul(a, b, prefix + dims(m, k, n));
          }
      for (int64_t k : {7, 31, 65}) {  // odd K: bf16 pairs padded with a zero
        const Tensor a = random_tensor({33, k}, dtype), b = random_tensor({k, 65}, dtype);
        check_matmul(a, b, prefix + dims(33, k, 65));
      }
    }
  }
}

TEST_CASE("gemm: transposed, strided and expanded operands on every path", "[gemm]") {
  ResetCaps reset;
  for (const Path& path : paths()) {
    use(path);
    for (DType dtype : kGemmDTypes) {
      const std::string prefix = path.name + " " + std::string(dtype_name(dtype)) + " ";
      const Tensor base = random_tensor({65, 70}, dtype), other = random_tensor({70, 33}, dtype);
      check_matmul(base.t(), base, prefix + "a^T a (A column-major)");
      check_matmul(base, base.t(), prefix + "a a^T (B transposed)");
      check_matmul(base.t().narrow(0, 3, 31), random_tensor({33, 65}, dtype).t(), prefix + "both transposed");
      check_matmul(base.slice(0, 1, 65, 3).slice(1, 0, 70, 2), other.slice(0, 0, 70, 2), prefix + "strided slices");
      check_matmul(random_tensor({1, 70}, dtype).expand({31, 70}), other, prefix + "rows expanded");
      check_matmul(base, random_tensor({70, 1}, dtype).expand({70, 9}), prefix + "columns expanded");
      // Output written through a strided view is covered by matmul's batched cases; here a
      // tall-thin product (computed transposed: N < M and N < NR).
      check_matmul(random_tensor({257, 33}, dtype), random_tensor({33, 3}, dtype), prefix + "tall thin");
      check_matmul(random_tensor({257, 33}, dtype), random_tensor({3, 33}, dtype).t(), prefix + "tall thin, B^T");
      // Dot products in blocks of 6 x 4 and their edges (13 x 9 is computed as 9 x 13).
      check_matmul(random_tensor({13, 70}, dtype), random_tensor({9, 70}, dtype).t(), prefix + "thin x W^T");
      check_matmul(random_tensor({16, 33}, dtype), random_tensor({40, 33}, dtype).t(), prefix + "16 rows x W^T");
      // Row-major f32 A with rows 256 apart is read in place on AVX-512 (no copy): K below and at
      // one slice, an unaligned start, edge rows and columns, and the threaded split by rows.
      const Tensor wide = random_tensor({257, 256}, dtype);
      check_matmul(wide.narrow(1, 3, 200), random_tensor({200, 33}, dtype), prefix + "A rows 256 apart, K 200");
      check_matmul(wide, random_tensor({256, 65}, dtype), prefix + "A rows 256 apart, K 256");
      check_matmul(wide.narrow(0, 0, 200), random_tensor({256, 300}, dtype), prefix + "A rows 256 apart, threaded");
    }
  }
}

TEST_CASE("gemm: batches with broadcast, K = 0 and empty outputs on every path", "[gemm]") {
  ResetCaps reset;
  for (const Path& path : paths()) {
    use(path);
    for (DType dtype : kGemmDTypes) {
      const std::string prefix = path.name + " " + std::string(dtype_name(dtype)) + " ";
      const Tensor a = random_tensor({3, 1, 33, 65}, dtype), b = random_tensor({4, 65, 31}, dtype);
      check_product(matmul(a, b), a.expand({3, 4, 33, 65}), b.expand({3, 4, 65, 31}), Tensor(), Activation::none,
                    prefix + "[3, 1, 33, 65] x [4, 65, 31]");
      const Tensor permuted = random_tensor({7, 2, 31, 9}, dtype).transpose(0, 1);  // [2, 7, 31, 9], no fold
      const Tensor right = random_tensor({9, 33}, dtype);
      check_product(matmul(permuted, right), permuted, right.expand({2, 7, 9, 33}), Tensor(), Activation::none,
                    prefix + "permuted batch x matrix");
      const Tensor folded = random_tensor({5, 7, 33}, dtype), weight = random_tensor({33, 31}, dtype);
      check_product(matmul(folded, weight), folded, weight.expand({5, 33, 31}), Tensor(), Activation::none,
                    prefix + "batch folded into rows");
      // Thin products of several batch entries (dot products; blocks run on across entries).
      const Tensor thin_a = random_tensor({3, 5, 40}, dtype), thin_b = random_tensor({3, 6, 40}, dtype).transpose(1, 2);
      check_product(matmul(thin_a, thin_b), thin_a, thin_b, Tensor(), Activation::none, prefix + "batched thin x W^T");
      const Tensor zeros = matmul(empty({3, 0}, {.dtype = dtype}), empty({0, 4}, {.dtype = dtype}));
      check_matches(zeros, RefTensor{{3, 4}, std::vector<double>(12, 0.0)}, prefix + "K = 0");
      CHECK(matmul(empty({0, 3}, {.dtype = dtype}), empty({3, 4}, {.dtype = dtype})).shape() == Shape{0, 4});
      CHECK(matmul(empty({2, 0, 3, 4}, {.dtype = dtype}), empty({4, 5}, {.dtype = dtype})).shape() ==
            Shape{2, 0, 3, 5});
    }
  }
}

TEST_CASE("gemm: products large enough for the threaded team path", "[gemm]") {
  ResetCaps reset;
  for (const Path& path : paths()) {
    use(path);
    for (DType dtype : kGemmDTypes) {
      const std::string prefix = path.name + " " + std::string(dtype_name(dtype)) + " ";
      // Rows split (M >= 2 MC), several K slices and a column block edge.
      check_matmul(random_tensor({700, 300}, dtype), random_tensor({300, 65}, dtype), prefix + "rows split");
      // B strips split (few rows, many columns), transposed B, K past one slice.
      check_matmul(random_tensor({33, 600}, dtype), random_tensor({1100, 600}, dtype).t(), prefix + "strips split");
      // Several batch entries, one per thread.
      const Tensor a = random_tensor({3, 65, 257}, dtype), b = random_tensor({3, 257, 70}, dtype);
      check_matmul(a, b, prefix + "batched");
    }
  }
}

TEST_CASE("gemm: the AVX-512 paths are really taken where the CPU has them", "[gemm]") {
  // A path that silently fell back would pass every test above: the caps must reach the kernel.
  ResetCaps reset;
  const cpu::CpuFeatures have = cpu::detected_cpu_features();
  if (!have.avx512) return;
  cpu::set_cpu_isa("avx512");
  CHECK(cpu::active_isa() == std::string_view("avx512"));
  CHECK(cpu::cpu_features().avx512_bf16 == have.avx512_bf16);
  cpu::set_cpu_disabled("avx512_bf16");
  CHECK_FALSE(cpu::cpu_features().avx512_bf16);
}

// ---- linear's fused epilogue ------------------------------------------------------------------------
namespace {
const std::vector<std::pair<Activation, std::string>> kActivations = {
    {Activation::none, "none"}, {Activation::relu, "relu"}, {Activation::gelu, "gelu"},
    {Activation::gelu_tanh, "gelu_tanh"}, {Activation::silu, "silu"}};
}

TEST_CASE("linear with a fused bias and activation matches the float64 reference on every path", "[gemm][linear]") {
  ResetCaps reset;
  for (const Path& path : paths()) {
    use(path);
    for (DType dtype : {DType::f32, DType::bf16, DType::f16, DType::f64}) {
      for (const auto& [activation, name] : kActivations) {
        // (rows, in, out): wide (bias per column), narrow (computed transposed: bias per row), edges.
        for (const auto& [rows, in, out] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
                 {33, 65, 31}, {257, 33, 3}, {1, 31, 7}, {65, 300, 70}}) {
          const std::string what = path.name + " " + std::string(dtype_name(dtype)) + " " + name + " " +
                                   dims(rows, in, out);
          const Tensor x = random_tensor({rows, in}, dtype), w = random_tensor({out, in}, dtype);
          const Tensor bias = random_tensor({out}, dtype);
          check_product(linear(x, w, bias, activation), x, w.t(), bias, activation, what + " with bias");
          check_product(linear(x, w, Tensor(), activation), x, w.t(), Tensor(), activation, what + " without bias");
          check_product(linear(non_contiguous(x), non_contiguous(w), bias.slice(0, 0, out, 1), activation), x, w.t(),
                        bias, activation, what + " non-contiguous");
        }
      }
    }
  }
}

TEST_CASE("linear with an activation equals the composite and handles K = 0, empty and 3-D inputs", "[gemm][linear]") {
  for (const auto& [activation, name] : kActivations) {
    const Tensor x = random_tensor({2, 3, 33}, DType::f32), w = random_tensor({65, 33}, DType::f32);
    const Tensor bias = random_tensor({65}, DType::f32);
    const Tensor fused = linear(x, w, bias, activation);
    Tensor composite = linear(x, w, bias);
    if (activation == Activation::relu) composite = relu(composite);
    if (activation == Activation::gelu) composite = gelu(composite);
    if (activation == Activation::gelu_tanh) composite = gelu(composite, GeluApproximation::tanh);
    if (activation == Activation::silu) composite = silu(composite);
    CHECK(fused.shape() == Shape{2, 3, 65});
    check_matches(fused, reference::from_tensor(composite), Tolerance{1e-6, 1e-6}, name + " fused = composite");
    // K = 0: act(bias) in every row.
    const Tensor zero_in = linear(empty({4, 0}), empty({5, 0}), bias.narrow(0, 0, 5), activation);
    RefTensor expected{{4, 5}, std::vector<double>(20)};
    const RefTensor rb = reference::from_tensor(bias);
    for (int64_t i = 0; i < 20; ++i) expected.values[i] = activate(activation, rb.values[i % 5]);
    check_matches(zero_in, expected, Tolerance{1e-6, 1e-6}, name + " K = 0");
    CHECK(linear(empty({0, 33}), w, bias, activation).shape() == Shape{0, 65});
    // A bias that broadcasts over rows too ([rows, out]) takes the composite.
    const Tensor x2 = random_tensor({4, 5}, DType::f64), w2 = random_tensor({3, 5}, DType::f64);
    const Tensor b2 = random_tensor({4, 3}, DType::f64);
    RefTensor expected2{{4, 3}, std::vector<double>(12)};
    const RefTensor rx = reference::from_tensor(x2), rw = reference::from_tensor(w2), rb2 = reference::from_tensor(b2);
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t o = 0; o < 3; ++o) {
        double sum = rb2.values[i * 3 + o];
        for (int64_t p = 0; p < 5; ++p) sum += rx.values[i * 5 + p] * rw.values[o * 5 + p];
        expected2.values[i * 3 + o] = activate(activation, sum);
      }
    check_matches(linear(x2, w2, b2, activation), expected2, name + " 2-D bias");
  }
}

TEST_CASE("linear with an activation passes gradcheck and gradgradcheck", "[gemm][linear][autograd]") {
  for (const auto& [activation, name] : kActivations) {
    INFO(name);
    const Activation act = activation;
    const autograd::SingleOutputFn with_bias = [act](const autograd::TensorList& v) {
      return linear(v[0], v[1], v[2], act);
    };
    const autograd::SingleOutputFn without_bias = [act](const autograd::TensorList& v) {
      return linear(v[0], v[1], Tensor(), act);
    };
    auto leaf = [](const Shape& shape) { return random_tensor(shape, DType::f64).requires_grad_(); };
    for (const auto& inputs : std::vector<autograd::TensorList>{{leaf({3, 5}), leaf({4, 5}), leaf({4})},
                                                                {leaf({2, 3, 5}), leaf({4, 5}), leaf({4})},
                                                                {leaf({5}), leaf({4, 5}), leaf({4})},
                                                                {leaf({9, 5}), leaf({2, 5}), leaf({2})}}) {
      CHECK_NOTHROW(autograd::gradcheck(with_bias, inputs));
      CHECK_NOTHROW(autograd::gradgradcheck(with_bias, inputs));
      CHECK_NOTHROW(autograd::gradcheck(without_bias, {inputs[0], inputs[1]}));
      CHECK_NOTHROW(autograd::gradgradcheck(without_bias, {inputs[0], inputs[1]}));
    }
  }
}
