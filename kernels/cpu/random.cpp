// CPU Philox draws (the element formulas are in kernels/random_draw.h, shared with CUDA).
#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/cpu/strided_loop.h"
#include "keel/kernels/dispatch.h"
#include "keel/kernels/random_draw.h"

namespace keel::cpu {

void random_fill(const Tensor& out, int kind, double a, double b, PhiloxState state) {
  KEEL_ASSERT(out.is_contiguous());
  const int64_t count = out.numel();
  dispatch_all(out.dtype(), "random", [&]<typename T>() {
    T* data = static_cast<T*>(out.raw_data());
    const int threads = threads_for(count, 4096);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < count; ++i) data[i] = convert<T, double>(draw_element(kind, a, b, state, i));
  });
}

}  // namespace keel::cpu
