#pragma once
// Shared plumbing of the CUDA backend (host side): the error check every runtime call and
// kernel launch goes through, the device guard, the stream kernels run on, and launch sizes.
// Included by the .cu and .cpp files of kernels/cuda only (it pulls in cuda_runtime.h).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "keel/core/error.h"

namespace keel::cuda::detail {

// Throws keel::Error "[op] CUDA error cudaErrorX: <cudaGetErrorString> (in <call>)" and clears
// the (non-sticky) error so that the next check does not report it again.
[[noreturn]] void throw_cuda_error(cudaError_t error, const char* op, const char* call);

}  // namespace keel::cuda::detail

// KEEL_CUDA_CHECK(cudaMalloc(...), "empty"): every CUDA runtime call is wrapped in this.
#define KEEL_CUDA_CHECK(call, op)                                               \
  do {                                                                          \
    const cudaError_t keel_cuda_status_ = (call);                               \
    if (keel_cuda_status_ != cudaSuccess)                                       \
      ::keel::cuda::detail::throw_cuda_error(keel_cuda_status_, (op), #call);   \
  } while (0)

// After every kernel launch: reports bad launch configurations (and, with
// CUDA_LAUNCH_BLOCKING=1, errors raised while the kernel ran).
#define KEEL_CUDA_CHECK_LAUNCH(op) KEEL_CUDA_CHECK(cudaGetLastError(), op)

namespace keel::cuda::detail {

// Makes `device` current for the guard's lifetime and restores the previous device after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device, const char* op = "cuda");
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  int device_ = -1;
};

// The stream Keel's kernels and allocations use on a device. For now the legacy default
// stream, which orders all work on the device; the caching allocator keys its pools on it, so
// that per-stream pools work unchanged once streams are exposed.
inline cudaStream_t current_stream(int /*device*/) { return nullptr; }

// Number of streaming multiprocessors of a device (cached after the first query).
int multiprocessor_count(int device);

// Blocks for a grid-stride loop over `work` items with `threads` threads per block: enough to
// fill the device several times over, never more than the work needs, at least 1.
inline unsigned grid_for(int64_t work, int threads, int device, int blocks_per_sm = 16) {
  const int64_t needed = (work + threads - 1) / threads;
  const int64_t cap = static_cast<int64_t>(multiprocessor_count(device)) * blocks_per_sm;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(needed, cap)));
}

}  // namespace keel::cuda::detail
