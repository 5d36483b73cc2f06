// CUDA devices: availability (never an exception: a machine without a driver or a device just
// has none), the device count, synchronization, and the error check behind KEEL_CUDA_CHECK.
#include <mutex>
#include <vector>

#include "keel/core/device.h"
#include "keel/kernels/cuda/cuda_common.h"

namespace keel::cuda {

namespace detail {

void throw_cuda_error(cudaError_t error, const char* op, const char* call) {
  cudaGetLastError();  // clears the error unless it is sticky (then the context is lost anyway)
  fail("[", op, "] CUDA error ", cudaGetErrorName(error), ": ", cudaGetErrorString(error), " (in ", call, ")");
}

DeviceGuard::DeviceGuard(int device, const char* op) : device_(device) {
  KEEL_CUDA_CHECK(cudaGetDevice(&previous_), op);
  if (previous_ != device_) KEEL_CUDA_CHECK(cudaSetDevice(device_), op);
}

DeviceGuard::~DeviceGuard() {
  // A destructor must not throw; restoring the device that was current a moment ago does not
  // fail in practice, and a failure would surface at the next checked call.
  if (previous_ >= 0 && previous_ != device_) cudaSetDevice(previous_);
}

int multiprocessor_count(int device) {
  // Never destroyed, so that kernels launched while static destructors run still work.
  static std::mutex& mutex = *new std::mutex();
  static std::vector<int>& counts = *new std::vector<int>();  // 0 = not queried yet
  std::lock_guard<std::mutex> lock(mutex);
  if (device >= static_cast<int>(counts.size())) counts.resize(static_cast<size_t>(device) + 1, 0);
  if (counts[device] == 0) {
    int count = 0;
    KEEL_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device), "cuda");
    counts[device] = std::max(count, 1);
  }
  return counts[device];
}

}  // namespace detail

int device_count() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // no driver (cudaErrorInsufficientDriver) or no device (cudaErrorNoDevice)
    return 0;
  }
  return count;
}

bool is_available() { return device_count() > 0; }

void synchronize(int device) {
  KEEL_CHECK(is_available(), "[synchronize] no CUDA device is available");
  if (device < 0) {
    KEEL_CUDA_CHECK(cudaDeviceSynchronize(), "synchronize");
    return;
  }
  KEEL_CHECK(device < device_count(), "[synchronize] device cuda:", device, " does not exist (",
             device_count(), " CUDA devices)");
  detail::DeviceGuard guard(device, "synchronize");
  KEEL_CUDA_CHECK(cudaDeviceSynchronize(), "synchronize");
}

}  // namespace keel::cuda
