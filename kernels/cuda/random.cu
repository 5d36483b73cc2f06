// CUDA Philox draws: random_fill, same numbers as cpu::random_fill for the same PhiloxState.
//
//   out[i] = convert<T>(draw_element(kind, a, b, state, i))      (kernels/random_draw.h)
//   kind: a RandomKind (uniform of some width, normal, integer).
// Element i depends only on (seed, offset, i), so any thread order gives the CPU's values:
// uniform and integer draws are bit-identical; normal draws go through logf/sinf/cosf, whose
// CUDA and C library versions may differ in the last bit or two.
// Bytes per element: itemsize(out); one Philox block (10 rounds) per element.
#include "keel/kernels/convert.h"
#include "keel/kernels/cuda/cuda_common.h"
#include "keel/kernels/cuda/cuda_kernels.h"
#include "keel/kernels/dispatch.h"
#include "keel/kernels/random_draw.h"

namespace keel::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads)
    random_kernel(T* out, int64_t count, int kind, double a, double b, PhiloxState state) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride)
    out[i] = convert<T, double>(draw_element(kind, a, b, state, i));
}

}  // namespace

void random_fill(const Tensor& out, int kind, double a, double b, PhiloxState state) {
  KEEL_ASSERT(out.is_contiguous());
  KEEL_ASSERT(kind >= kRandomUniform24 && kind <= kRandomUniform8);
  const int64_t count = out.numel();
  if (count == 0) return;
  const int device = out.device().index;
  detail::DeviceGuard guard(device, "random");
  dispatch_all(out.dtype(), "random", [&]<typename T>() {
    const unsigned grid = detail::grid_for(count, kThreads, device);
    random_kernel<T><<<grid, kThreads, 0, detail::current_stream(device)>>>(static_cast<T*>(out.raw_data()), count,
                                                                            kind, a, b, state);
    KEEL_CUDA_CHECK_LAUNCH("random");
  });
}

}  // namespace keel::cuda
