// erf and exact (erf-based) GELU on 16M elements: Keel's elementwise CPU kernel (kernels/cpu/
// elementwise.isa.cpp through keel::cpu::unary, on preallocated tensors) and the GELU backward:
// the fused kernel (cpu::gelu_erf_backward, what gelu_backward runs without create_graph) and the
// composite of public ops (g * (cdf + x pdf), cdf from erf; the graph under create_graph), 1 and
// all threads.
// bench/kernels/torch_gelu.py has PyTorch's peers (torch.erf(out=), aten.gelu.out,
// aten.gelu_backward).
//
// Rows: group erf_f32 | gelu_{f32,bf16} | gelu_bwd_{f32,bf16} | gelu_bwd_composite_f32, case "16M",
// limit copy_bw; bytes are
// the tensors read and written once (forward: x in, y out; backward: x, dy in, dx out).
// Run: build-h/bench/kernel_bench_gelu [filter]   (filter: a substring of the group)
#include <omp.h>

#include <string>

#include "bench_util.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include <keel/keel.h>

using namespace keel;
namespace kb = keel::bench;

int main(int argc, char** argv) {
  const std::string filter = argc > 1 ? argv[1] : "";
  auto wanted = [&](const std::string& group) { return filter.empty() || group.find(filter) != std::string::npos; };
  constexpr int64_t n = int64_t{1} << 24;
  const std::string case_name = "16M";
  for (const int threads : kb::thread_counts()) {
    omp_set_num_threads(threads);
    for (const DType dtype : {DType::f32, DType::bf16}) {
      const std::string suffix = dtype == DType::f32 ? "_f32" : "_bf16";
      const double item = dtype == DType::f32 ? 4 : 2;
      const Tensor x = randn({n}).to(dtype);
      const Tensor y = empty({n}, TensorOptions{dtype});
      for (const auto& [name, op] : {std::pair{"erf", UnaryOp::erf}, std::pair{"gelu", UnaryOp::gelu_erf}}) {
        const std::string group = name + suffix;
        if (dtype == DType::bf16 && std::string(name) == "erf") continue;
        if (!wanted(group)) continue;
        kb::emit(group, case_name, "keel", threads, kb::median_seconds([&] { cpu::unary(op, y, x); }), 0,
                 2 * item * n, "copy_bw");
      }
      const Tensor g = randn({n}).to(dtype);
      if (wanted("gelu_bwd" + suffix)) {
        kb::emit("gelu_bwd" + suffix, case_name, "keel", threads,
                 kb::median_seconds([&] { cpu::gelu_erf_backward(y, g, x); }), 0, 3 * item * n, "copy_bw");
      }
      if (dtype == DType::f32 && wanted("gelu_bwd_composite" + suffix)) {
        auto body = [&] {
          const Tensor cdf = (erf(x * 0.70710678118654752440) + 1) * 0.5;
          const Tensor pdf = exp(x * x * -0.5) * 0.39894228040143267794;
          const Tensor dx = g * (cdf + x * pdf);
        };
        kb::emit("gelu_bwd_composite" + suffix, case_name, "keel", threads, kb::median_seconds(body, 5), 0,
                 3 * item * n, "copy_bw");
      }
    }
  }
}
