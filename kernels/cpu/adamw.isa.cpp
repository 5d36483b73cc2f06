// The fused AdamW step: one pass over each parameter updating p, m (exp_avg), v (exp_avg_sq) and
// vmax (max_exp_avg_sq, amsgrad) in place. The formula (fused_kernels.h AdamWScalars) is
// PyTorch's torch.optim.AdamW single-tensor step, with the scalars applied in f32 as PyTorch does
// for f32 tensors:
//   p *= decay; m = m * beta1 + (1 - beta1) * g; v = v * beta2 + (1 - beta2) * g * g
//   p = p + (-step_size * m) / (sqrt(v or vmax) / bias_correction2_sqrt + eps)
// p, g: f32 or bf16 (computed in f32, p rounded back to bf16 to nearest even, by vcvtneps2bf16
// where AVX512-BF16 is on); m, v, vmax: f32.
// Bytes per element: f32 params 4 * 4 read (p, g, m, v) + 3 * 4 written (p, m, v), amsgrad 4 + 4
// more; FLOPs ~12. Memory bound. All tensors of the call form one list of chunks of kChunk
// elements, split across OpenMP threads. Reference: the f64 formula (tests/ops/test_optim_step.cpp)
// and ops/optim_step.cpp's composite.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/cpu/fused_kernels.h"
#include "keel/kernels/cpu/simd.h"

// GCC 12's AVX-512 intrinsics start from a self-initialized "undefined" register that
// -W(maybe-)uninitialized reports once they are inlined; the values are never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace keel::cpu::KEEL_CPU_ISA {

namespace {

using namespace simd;

constexpr int64_t kChunk = 16384;  // elements per task

template <typename P>
void adamw_run(P* p, const P* g, float* m, float* v, float* vmax, int64_t n, const AdamWScalars& s) {
  const vfloat decay = splat(s.decay), beta1 = splat(s.beta1), beta2 = splat(s.beta2);
  const vfloat one_minus_beta1 = splat(s.one_minus_beta1), one_minus_beta2 = splat(s.one_minus_beta2);
  const vfloat eps = splat(s.eps), neg_step = splat(-s.step_size), bc2 = splat(s.bias_correction2_sqrt);
  for (int64_t i = 0; i < n; i += kWidth) {
    const int64_t count = std::min<int64_t>(kWidth, n - i);
    vfloat grad = load(g + i, count, 0.f);
    if (s.maximize) grad = -grad;
    const vfloat param = load(p + i, count, 0.f) * decay;
    const vfloat exp_avg = load(m + i, count, 0.f) * beta1 + one_minus_beta1 * grad;
    vfloat exp_avg_sq = load(v + i, count, 0.f) * beta2 + one_minus_beta2 * grad * grad;
    store(m + i, exp_avg, count);
    store(v + i, exp_avg_sq, count);
    if (vmax) {
      exp_avg_sq = max(load(vmax + i, count, 0.f), exp_avg_sq);
      store(vmax + i, exp_avg_sq, count);
    }
    const vfloat denom = sqrt(exp_avg_sq) / bc2 + eps;
    store(p + i, param + (neg_step * exp_avg) / denom, count);
  }
}

}  // namespace

void adamw_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                const std::vector<Tensor>& max_exp_avg_sqs, const AdamWScalars& scalars) {
  struct Task {
    size_t tensor;
    int64_t begin, end;
  };
  std::vector<Task> tasks;
  int64_t total = 0;
  for (size_t k = 0; k < params.size(); ++k) {
    const int64_t n = params[k].numel();
    total += n;
    for (int64_t begin = 0; begin < n; begin += kChunk) tasks.push_back({k, begin, std::min(n, begin + kChunk)});
  }
  const int threads = total < 2 * kChunk ? 1 : omp_get_max_threads();
  [[maybe_unused]] const bool native_bf16 = cpu_features().avx512_bf16;  // bf16 params: vcvtneps2bf16
  const int64_t num_tasks = static_cast<int64_t>(tasks.size());
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t t = 0; t < num_tasks; ++t) {
    const Task& task = tasks[t];
    const size_t k = task.tensor;
    float* m = static_cast<float*>(exp_avgs[k].raw_data()) + task.begin;
    float* v = static_cast<float*>(exp_avg_sqs[k].raw_data()) + task.begin;
    float* vmax = scalars.amsgrad ? static_cast<float*>(max_exp_avg_sqs[k].raw_data()) + task.begin : nullptr;
    const int64_t n = task.end - task.begin;
    if (params[k].dtype() == DType::bf16) {
#if KEEL_SIMD_WIDTH == 16
      if (native_bf16) {
        adamw_run(static_cast<NativeBFloat16*>(params[k].raw_data()) + task.begin,
                  static_cast<const NativeBFloat16*>(grads[k].raw_data()) + task.begin, m, v, vmax, n, scalars);
        continue;
      }
#endif
      adamw_run(static_cast<BFloat16*>(params[k].raw_data()) + task.begin,
                static_cast<const BFloat16*>(grads[k].raw_data()) + task.begin, m, v, vmax, n, scalars);
    } else {
      adamw_run(static_cast<float*>(params[k].raw_data()) + task.begin,
                static_cast<const float*>(grads[k].raw_data()) + task.begin, m, v, vmax, n, scalars);
    }
  }
}

}  // namespace keel::cpu::KEEL_CPU_ISA
