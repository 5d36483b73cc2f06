// cuda::matmul in a build without CUDA (KEEL_CUDA=OFF): a clear error at the first use.
#include "keel/kernels/cuda/gemm.h"

namespace keel::cuda {

void matmul(const Tensor&, const Tensor&, const Tensor&) {
  fail("[matmul] no CUDA kernel in this build (Keel was built with KEEL_CUDA=OFF)");
}

}  // namespace keel::cuda
