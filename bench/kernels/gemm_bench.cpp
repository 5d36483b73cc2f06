// Keel's CPU GEMM (kernels/cpu/gemm.isa.cpp, called as cpu::matmul into a preallocated output)
// against oneDNN's matmul primitive (created once, outside the timing loop), f32 / bf16 / f16,
// 1 and all threads. FLOPs = 2 M N K; bytes = itemsize (M K + K N + M N).
//
// Cases: square M = N = K = 256, 512, 1024, 2048 (row-major operands) and training shapes as
// linear layers, out[M, N] = x[M, K] W[N, K]^T (B read transposed, as keel::linear does):
//   linear 64x784->256 (MNIST MLP layer 1), 64x256->10 (its head), 256x1024->1024 (a wide layer),
//   1024x768->3072 (a transformer MLP up-projection, one 1024-token batch).
// Usage: kernel_bench_gemm [filter]   (only cases whose name contains filter); GEMM_GROUPS=f32,bf16
// picks groups, GEMM_THREADS=1 one thread count.
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <string>
#include <vector>

#include "bench_util.h"
#include "keel/keel.h"
#include "keel/kernels/cpu/cpu_kernels.h"

#if defined(KEEL_WITH_ONEDNN)
#include <oneapi/dnnl/dnnl.hpp>
#endif

using namespace keel;

namespace {

struct Case {
  std::string name;
  int64_t m, k, n;
  bool transposed_b;  // B = W^T with W [N, K] row-major
};

std::vector<Case> cases() {
  return {
      {"256x256x256", 256, 256, 256, false},
      {"512x512x512", 512, 512, 512, false},
      {"1024x1024x1024", 1024, 1024, 1024, false},
      {"2048x2048x2048", 2048, 2048, 2048, false},
      {"linear 64x784->256", 64, 784, 256, true},
      {"linear 64x256->10", 64, 256, 10, true},
      {"linear 256x1024->1024", 256, 1024, 1024, true},
      {"linear 1024x768->3072", 1024, 768, 3072, true},
  };
}

#if defined(KEEL_WITH_ONEDNN)
// oneDNN's matmul primitive on the same buffers, created once.
struct OnednnMatmul {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  dnnl::matmul primitive;
  std::unordered_map<int, dnnl::memory> args;
  OnednnMatmul(const Case& c, dnnl::memory::data_type type, const Tensor& a, const Tensor& w, Tensor& out) {
    using dnnl::memory;
    const memory::desc a_md({c.m, c.k}, type, memory::format_tag::ab);
    const memory::desc b_md({c.k, c.n}, type, c.transposed_b ? memory::format_tag::ba : memory::format_tag::ab);
    const memory::desc c_md({c.m, c.n}, type, memory::format_tag::ab);
    primitive = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), engine));
    args = {{DNNL_ARG_SRC, memory(a_md, engine, a.raw_data())},
            {DNNL_ARG_WEIGHTS, memory(b_md, engine, w.raw_data())},
            {DNNL_ARG_DST, memory(c_md, engine, out.raw_data())}};
  }
  void run() {
    primitive.execute(stream, args);
    stream.wait();
  }
};
#endif

void run_group(const std::string& group, DType dtype, const std::string& limit, const char* filter) {
  const int item = static_cast<int>(dtype_size(dtype));
  for (const Case& c : cases()) {
    if (filter && c.name.find(filter) == std::string::npos) continue;
    const Tensor a = randn({c.m, c.k}).to(dtype);
    // w holds B's data: [K, N] row-major, or W [N, K] row-major read as W^T.
    const Tensor w = c.transposed_b ? randn({c.n, c.k}).to(dtype) : randn({c.k, c.n}).to(dtype);
    const Tensor b = c.transposed_b ? w.t() : w;
    Tensor out = empty({c.m, c.n}, {.dtype = dtype});
    const double flops = 2.0 * c.m * c.n * c.k;
    const double bytes = static_cast<double>(item) * (c.m * c.k + c.k * c.n + c.m * c.n);
    std::vector<int> thread_list = bench::thread_counts();
    if (const char* only = std::getenv("GEMM_THREADS")) thread_list = {std::atoi(only)};
    for (int threads : thread_list) {
      omp_set_num_threads(threads);
      // Other processes share this 2-core machine: keel and oneDNN are timed alternately, three
      // rounds, and each keeps its fastest median.
      double keel_s = 1e30, dnnl_s = 1e30;
#if defined(KEEL_WITH_ONEDNN)
      const auto type = dtype == DType::f32    ? dnnl::memory::data_type::f32
                        : dtype == DType::bf16 ? dnnl::memory::data_type::bf16
                                               : dnnl::memory::data_type::f16;
      std::unique_ptr<OnednnMatmul> onednn;
      // oneDNN 2.6 has no f16 matmul for this CPU ("could not create a primitive descriptor").
      if (dtype != DType::f16) try {
        onednn = std::make_unique<OnednnMatmul>(c, type, a, w, out);
      } catch (const dnnl::error& e) {
        std::fprintf(stderr, "onednn %s %s: %s\n", group.c_str(), c.name.c_str(), e.what());
      }
#endif
      for (int round = 0; round < 3; ++round) {
        keel_s = std::min(keel_s, bench::median_seconds([&] { cpu::matmul(out, a, b); }));
#if defined(KEEL_WITH_ONEDNN)
        if (onednn) dnnl_s = std::min(dnnl_s, bench::median_seconds([&] { onednn->run(); }));
#endif
      }
      bench::emit(group, c.name, "keel", threads, keel_s, flops, bytes, limit);
      if (dnnl_s < 1e30) bench::emit(group, c.name, "onednn", threads, dnnl_s, flops, bytes, limit);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : nullptr;
  const char* groups = std::getenv("GEMM_GROUPS");  // e.g. "f32,bf16"
  auto wanted = [&](const std::string& g) {
    return !groups || ("," + std::string(groups) + ",").find("," + g + ",") != std::string::npos;
  };
  std::fprintf(stderr, "cpu: %s\n", cpu::describe_cpu_features().c_str());
  if (wanted("f32")) run_group("gemm_f32", DType::f32, "fma_f32", filter);
  if (wanted("bf16")) run_group("gemm_bf16", DType::bf16, "dot_bf16", filter);
  if (wanted("f16")) run_group("gemm_f16", DType::f16, "fma_f32", filter);
  return 0;
}
