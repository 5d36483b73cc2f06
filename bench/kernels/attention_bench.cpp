// Scaled dot-product attention on the CPU, f32: Keel's flash kernel (scaled_dot_product_attention,
// kernels/cpu/flash_attention.isa.cpp) against Keel's composite (matmul, scale, causal masked_fill,
// softmax, matmul, differentiated op by op), forward alone and forward + backward.
// The PyTorch peer (torch 1.13 has no fused CPU attention: its composite) is torch_attention.py.
//
//   q, k, v: (B, H, T, D), H = 8.  FLOPs: forward 4 B H T^2 D (half when causal: the kernel skips
//   masked tiles, the composite does not but is credited the same work), forward + backward 3.5x
//   that (the backward's five products against the forward's two). limit: fma_f32.
//
// Usage: kernel_bench_attention [--batch B] [--bf16] [T ...]   cases at these lengths (default
//            512 1024), batch B (default 1), f32 or bf16 storage (groups attention_*_bf16, limit
//            fma_f32: both compute in f32)
//        kernel_bench_attention --memory [T]   peak memory of forward + backward (default T 2048)
// Peak memory: Keel's tensor allocator peak (cpu_memory_stats; the flash kernel's own scratch,
// which is not a tensor, is counted in the RSS column) and the process's peak RSS growth (VmHWM
// after /proc/self/clear_refs), both above what q, k, v, and the output gradient already hold.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>

#include <keel/keel.h>

#include "bench_util.h"

using namespace keel;
using namespace keel::bench;

namespace {

Tensor composite(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.shape()[3]));
  Tensor scores = matmul(q, k.transpose(-1, -2)) * scale;
  if (causal) {
    const int64_t t = q.shape()[2];
    scores = masked_fill(scores, logical_not(tril(ones({t, t}, {.dtype = DType::bool_}))),
                         -std::numeric_limits<double>::infinity());
  }
  return matmul(softmax(scores, -1), v);
}

Tensor flash(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  return scaled_dot_product_attention(q, k, v, {.is_causal = causal});
}

// Fewer samples for slow calls: a run stays within minutes.
template <typename Body> double time_it(Body&& body) {
  const auto start = std::chrono::steady_clock::now();
  body();
  const double once = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (once > 0.3) return median_seconds(body, 3, 0.0);
  return median_seconds(body, once > 0.05 ? 5 : 9);
}

struct Inputs {
  Tensor q, k, v, g;
};
Inputs make_inputs(int64_t batch, int64_t heads, int64_t length, int64_t dim, DType dtype = DType::f32) {
  auto r = [&] { return randn({batch, heads, length, dim}).to(dtype); };
  return {r(), r(), r(), r()};
}

template <typename F> void forward_backward(F f, const Inputs& x, bool causal) {
  Tensor q = x.q.detach().requires_grad_(), k = x.k.detach().requires_grad_(), v = x.v.detach().requires_grad_();
  const Tensor out = f(q, k, v, causal);
  const autograd::TensorList grads = autograd::grad({out}, {q, k, v}, {x.g});
  (void)grads;
}

void run_case(int64_t batch, int64_t heads, int64_t length, int64_t dim, bool causal, DType dtype) {
  const Inputs x = make_inputs(batch, heads, length, dim, dtype);
  const std::string suffix = dtype == DType::bf16 ? "_bf16" : "_f32";
  const std::string fwd = "attention_fwd" + suffix, fwdbwd = "attention_fwdbwd" + suffix;
  const std::string name = "B" + std::to_string(batch) + "_H" + std::to_string(heads) + "_T" + std::to_string(length) +
                           "_D" + std::to_string(dim) + (causal ? "_causal" : "");
  const double flops = 4.0 * batch * heads * length * length * dim * (causal ? 0.5 : 1.0);
  const double bytes = 4.0 * batch * heads * length * dim * static_cast<double>(dtype_size(dtype));
  for (int threads : thread_counts()) {
    omp_set_num_threads(threads);
    emit(fwd, name, "keel", threads, time_it([&] { flash(x.q, x.k, x.v, causal); }), flops, bytes,
         "fma_f32");
    emit(fwd, name, "keel_composite", threads, time_it([&] { composite(x.q, x.k, x.v, causal); }),
         flops, bytes, "fma_f32");
    emit(fwdbwd, name, "keel", threads, time_it([&] { forward_backward(flash, x, causal); }),
         3.5 * flops, 2 * bytes, "fma_f32");
    emit(fwdbwd, name, "keel_composite", threads,
         time_it([&] { forward_backward(composite, x, causal); }), 3.5 * flops, 2 * bytes, "fma_f32");
  }
}

size_t peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  return 0;
}
size_t rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  return 0;
}
void reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
}

template <typename F> void measure_memory(const char* impl, F f, int64_t length, bool causal) {
  const int64_t batch = 1, heads = 8, dim = 64;
  cpu_empty_cache();
  const Inputs x = make_inputs(batch, heads, length, dim);
  cpu_empty_cache();
  cpu_reset_peak_memory_stats();
  const size_t tensors_before = cpu_memory_stats().allocated_bytes;
  reset_peak_rss();
  const size_t rss_before = rss_bytes();
  forward_backward(f, x, causal);
  const size_t tensor_peak = cpu_memory_stats().peak_allocated_bytes - tensors_before;
  const size_t rss_peak = peak_rss_bytes() - rss_before;
  std::printf("{\"group\": \"attention_memory_f32\", \"case\": \"B%lld_H%lld_T%lld_D%lld%s\", \"impl\": \"%s\", "
              "\"threads\": %d, \"tensor_peak_bytes\": %zu, \"rss_peak_growth_bytes\": %zu}\n",
              static_cast<long long>(batch), static_cast<long long>(heads), static_cast<long long>(length),
              static_cast<long long>(dim), causal ? "_causal" : "", impl, omp_get_max_threads(), tensor_peak, rss_peak);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> lengths;
  bool memory = false;
  int64_t batch = 1;
  DType dtype = DType::f32;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--memory") == 0) memory = true;
    else if (std::strcmp(argv[i], "--bf16") == 0) dtype = DType::bf16;
    else if (std::strcmp(argv[i], "--batch") == 0 && i + 1 < argc) batch = std::atoll(argv[++i]);
    else lengths.push_back(std::atoll(argv[i]));
  }
  if (memory) {
    const int64_t length = lengths.empty() ? 2048 : lengths[0];
    // Flash first: the composite's freed blocks would otherwise sit in the allocator's cache.
    measure_memory("keel", flash, length, false);
    measure_memory("keel_composite", composite, length, false);
    return 0;
  }
  if (lengths.empty()) lengths = {512, 1024};
  for (int64_t length : lengths)
    for (int64_t dim : {64, 128})
      for (bool causal : {false, true}) run_case(batch, 8, length, dim, causal, dtype);
  return 0;
}
