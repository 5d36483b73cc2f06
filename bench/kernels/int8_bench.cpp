// Keel's INT8 GEMM (kernels/cpu/gemm_int8.cpp, called as cpu::gemm_int8 into a preallocated
// output: the kernel of keel::quantized_matmul / quantized_linear) against oneDNN's int8 matmul
// primitive (created once, outside the timing loop), 1 and all threads.
//
// Both compute out_f32[M, N] = a_scale * b_scale * sum_k (a[m, k] - za) * b[k, n] for u8 a with a
// zero point (za = 128) and s8 b without one, per-tensor scales, dequantized f32 output.
// Two modes of each, all in one process run:
//   keel             B prepacked once (cpu::pack_int8_b: what keel::pack_quantized_weight holds)
//   onednn           weights in the primitive's preferred layout (format_tag::any), reordered once
//   keel_per_call    B in its plain layout, packed inside every call
//   onednn_per_call  weights in their plain layout (ab / ba), copied inside every call
// "keel" against "onednn" is the fair comparison for inference with fixed weights.
// ops = 2 M N K; bytes = M K + K N + 4 M N.
//
// Cases: square M = N = K = 256 .. 2048 with b [K, N] row-major, and linear layers out = x W^T with
// the weight W [N, K] row-major (64x784->256: the MNIST MLP's first layer; 256x1024->1024).
// Usage: kernel_bench_int8 [filter]; INT8_THREADS=1 runs one thread count; INT8_ONLY_KEEL=1 times
// only the prepacked Keel kernel (for tuning it); INT8_BEST=1 reports the best sample, not the
// median, with Keel's samples alternating with oneDNN's (keel with onednn, keel_per_call with
// onednn_per_call) for ~2 s each pair.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "keel/keel.h"
#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/cpu/gemm_int8.h"

#if defined(KEEL_WITH_ONEDNN)
#include <oneapi/dnnl/dnnl.hpp>
#endif

using namespace keel;

namespace {

struct Case {
  std::string name;
  int64_t m, k, n;
  bool weight_layout;  // b = W^T with W [N, K] row-major
};

std::vector<Case> cases() {
  return {
      {"256x256x256", 256, 256, 256, false},
      {"512x512x512", 512, 512, 512, false},
      {"1024x1024x1024", 1024, 1024, 1024, false},
      {"2048x2048x2048", 2048, 2048, 2048, false},
      {"linear 64x784->256", 64, 784, 256, true},
      {"linear 256x1024->1024", 256, 1024, 1024, true},
  };
}

constexpr double kAScale = 0.02, kBScale = 0.005;

// INT8_BEST=1: the fastest of ~2 s of samples (each >= 20 ms of calls) instead of the median of 9:
// on a machine shared with other work, the best sample is the one least disturbed by it. Keel's
// samples alternate with its peer's (oneDNN's), so that both see the same disturbances.
bool best_of() { return std::getenv("INT8_BEST") != nullptr; }
template <typename First, typename Second> std::pair<double, double> best_seconds(First&& first, Second&& second) {
  using Clock = std::chrono::steady_clock;
  const int first_inner = std::max(1, static_cast<int>(0.02 / std::max(bench::median_seconds(first, 3), 1e-9)));
  const int second_inner = std::max(1, static_cast<int>(0.02 / std::max(bench::median_seconds(second, 3), 1e-9)));
  double best_first = 1e30, best_second = 1e30;
  auto sample = [](auto& body, int inner) {
    const auto start = Clock::now();
    for (int i = 0; i < inner; ++i) body();
    return std::chrono::duration<double>(Clock::now() - start).count() / inner;
  };
  for (const auto end = Clock::now() + std::chrono::seconds(2); Clock::now() < end;) {
    best_first = std::min(best_first, sample(first, first_inner));
    best_second = std::min(best_second, sample(second, second_inner));
  }
  return {best_first, best_second};
}
template <typename Body> double seconds_of(Body&& body) {
  if (!best_of()) return bench::median_seconds(body);
  return best_seconds(body, [] {}).first;
}
constexpr int kAZeroPoint = 128;

#if defined(KEEL_WITH_ONEDNN)
// oneDNN's matmul primitive for case c, created once; reordered: the weights in the primitive's
// own layout (format_tag::any), reordered once here. run() executes it once.
struct OnednnMatmul {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream s{eng};
  dnnl::matmul prim;
  std::unordered_map<int, dnnl::memory> args;
  OnednnMatmul(const Case& c, const Tensor& a, const Tensor& w, Tensor& out, bool reordered) {
    using namespace dnnl;
    const memory::desc a_md({c.m, c.k}, memory::data_type::u8, memory::format_tag::ab);
    const memory::desc plain_b_md({c.k, c.n}, memory::data_type::s8, c.weight_layout ? memory::format_tag::ba : memory::format_tag::ab);
    const memory::desc any_b_md({c.k, c.n}, memory::data_type::s8, memory::format_tag::any);
    const memory::desc c_md({c.m, c.n}, memory::data_type::f32, memory::format_tag::ab);
    primitive_attr attr;
    attr.set_output_scales(0, {static_cast<float>(kAScale * kBScale)});
    attr.set_zero_points(DNNL_ARG_SRC, 0, {kAZeroPoint});
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, reordered ? any_b_md : plain_b_md, c_md), attr, eng);
    prim = dnnl::matmul(pd);
    std::fprintf(stderr, "onednn %s%s: %s\n", c.name.c_str(), reordered ? " (reordered weights)" : "", pd.impl_info_str());
    memory a_mem(a_md, eng, a.raw_data()), c_mem(c_md, eng, out.raw_data());
    memory plain_b_mem(plain_b_md, eng, w.raw_data());
    memory b_mem = plain_b_mem;
    if (reordered && pd.weights_desc() != plain_b_md) {
      b_mem = memory(pd.weights_desc(), eng);
      reorder(plain_b_mem, b_mem).execute(s, plain_b_mem, b_mem);
      s.wait();
    }
    args = {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}};
    run();
  }
  void run() {
    prim.execute(s, args);
    s.wait();
  }
};
#endif

}  // namespace

int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  std::fprintf(stderr, "cpu: %s; keel int8 path: %s\n", cpu::describe_cpu_features().c_str(),
               std::string(cpu::gemm_int8_path()).c_str());
  std::vector<int> thread_list = bench::thread_counts();
  if (const char* only = std::getenv("INT8_THREADS")) thread_list = {std::atoi(only)};
  for (const Case& c : cases()) {
    if (filter && c.name.find(filter) == std::string::npos) continue;
    const Tensor a = randint(0, 256, {c.m, c.k}, {.dtype = DType::u8});
    // w holds b's data: [K, N] row-major, or W [N, K] row-major read as W^T.
    const Tensor w = c.weight_layout ? randint(-128, 128, {c.n, c.k}, {.dtype = DType::i8})
                                     : randint(-128, 128, {c.k, c.n}, {.dtype = DType::i8});
    const Tensor b = c.weight_layout ? w.t() : w;
    const QuantizedMatmulOptions options{.a_scale = kAScale, .a_zero_point = kAZeroPoint, .b_scale = kBScale};
    const double ops = 2.0 * c.m * c.n * c.k;
    const double bytes = static_cast<double>(c.m * c.k + c.k * c.n + 4 * c.m * c.n);
    for (const int threads : thread_list) {
      omp_set_num_threads(threads);
      // The kernel into a preallocated output, as the oneDNN primitive writes one (the op,
      // quantized_matmul, adds its argument checks and the output's allocation).
      Tensor keel_out = empty({c.m, c.n});
      cpu::Int8GemmArgs args;
      args.m = c.m, args.n = c.n, args.k = c.k;
      args.a = a.raw_data(), args.a_row_stride = c.k, args.a_col_stride = 1;
      args.a_zero_point = kAZeroPoint, args.a_scale = static_cast<float>(kAScale);
      args.b = static_cast<const int8_t*>(w.raw_data());
      args.b_n_stride = b.stride(1), args.b_k_stride = b.stride(0);
      const int32_t b_zero_point = 0;
      const float b_scale = static_cast<float>(kBScale);
      args.b_zero_points = &b_zero_point, args.b_scales = &b_scale;
      args.output = cpu::Int8GemmOutput::f32, args.out = keel_out.raw_data(), args.out_row_stride = c.n;
      const bool only_keel = std::getenv("INT8_ONLY_KEEL") != nullptr;
      auto per_call_body = [&] { cpu::gemm_int8(args); };
      // Prepacked: B packed once, as keel::pack_quantized_weight does.
      const cpu::Int8PackedB packed = cpu::pack_int8_b(args.b, c.n, c.k, args.b_n_stride, args.b_k_stride);
      cpu::Int8GemmArgs packed_args = args;
      packed_args.packed_b = &packed;
      auto keel_body = [&] { cpu::gemm_int8(packed_args); };
      double keel_s = 0, per_call_s = 1, dnnl_s = 0, dnnl_plain_s = 0;
      Tensor out = empty({c.m, c.n}), plain_out = empty({c.m, c.n});
      if (only_keel) {
        keel_s = seconds_of(keel_body);
      } else {
#if defined(KEEL_WITH_ONEDNN)
        try {
          OnednnMatmul reordered(c, a, w, out, true), plain(c, a, w, plain_out, false);
          auto dnnl_body = [&] { reordered.run(); };
          auto dnnl_plain_body = [&] { plain.run(); };
          if (best_of()) {
            std::tie(per_call_s, dnnl_plain_s) = best_seconds(per_call_body, dnnl_plain_body);
            std::tie(keel_s, dnnl_s) = best_seconds(keel_body, dnnl_body);
          } else {
            per_call_s = seconds_of(per_call_body);
            keel_s = seconds_of(keel_body);
            dnnl_s = seconds_of(dnnl_body);
            dnnl_plain_s = seconds_of(dnnl_plain_body);
          }
        } catch (const dnnl::error& e) {
          std::fprintf(stderr, "onednn %s: %s\n", c.name.c_str(), e.what());
          per_call_s = seconds_of(per_call_body);
          keel_s = seconds_of(keel_body);
        }
#else
        per_call_s = seconds_of(per_call_body);
        keel_s = seconds_of(keel_body);
#endif
      }
      // The per-call output, then the prepacked one (which keel_out holds at the end).
      per_call_body();
      const Tensor per_call_out = keel_out.clone();
      keel_body();
      bench::emit("gemm_int8", c.name, "keel", threads, keel_s, ops, bytes, "dot_int8");
      bench::emit("gemm_int8", c.name, "keel_per_call", threads, per_call_s, ops, bytes, "dot_int8");
      if (amax(abs(per_call_out - keel_out)).item<double>() != 0)
        std::fprintf(stderr, "MISMATCH %s: prepacked and per-call differ\n", c.name.c_str());
      if (only_keel) continue;
#if defined(KEEL_WITH_ONEDNN)
      if (dnnl_s > 0) {
        bench::emit("gemm_int8", c.name, "onednn", threads, dnnl_s, ops, bytes, "dot_int8");
        bench::emit("gemm_int8", c.name, "onednn_per_call", threads, dnnl_plain_s, ops, bytes, "dot_int8");
        // Same numbers (oneDNN may round its f32 epilogue differently: compare loosely).
        const Tensor mine = quantized_matmul(a, b, options);
        if (amax(abs(mine - keel_out)).item<double>() != 0) std::fprintf(stderr, "MISMATCH %s: the op and the kernel differ\n", c.name.c_str());
        const double max_diff = amax(abs(mine - out)).item<double>(), scale = amax(abs(out)).item<double>();
        if (max_diff > 1e-5 * scale + 1e-6) std::fprintf(stderr, "MISMATCH %s: max |keel - onednn| = %g\n", c.name.c_str(), max_diff);
      }
#endif
    }
  }
  return 0;
}
