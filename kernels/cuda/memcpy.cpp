// Contiguous byte copies host <-> device and device <-> device, synchronous: when the call
// returns, the bytes are in place (ops/copy.cpp stages strided tensors through these).
#include "keel/kernels/cuda/cuda_common.h"
#include "keel/kernels/cuda/cuda_kernels.h"

namespace keel::cuda {

void memcpy_host_to_device(void* device_dst, const void* host_src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  detail::DeviceGuard guard(device, "to");
  const cudaStream_t stream = detail::current_stream(device);
  KEEL_CUDA_CHECK(cudaMemcpyAsync(device_dst, host_src, nbytes, cudaMemcpyHostToDevice, stream), "to");
  KEEL_CUDA_CHECK(cudaStreamSynchronize(stream), "to");
}

void memcpy_device_to_host(void* host_dst, const void* device_src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  detail::DeviceGuard guard(device, "to");
  const cudaStream_t stream = detail::current_stream(device);
  KEEL_CUDA_CHECK(cudaMemcpyAsync(host_dst, device_src, nbytes, cudaMemcpyDeviceToHost, stream), "to");
  KEEL_CUDA_CHECK(cudaStreamSynchronize(stream), "to");
}

void memcpy_device_to_device(void* dst, int dst_device, const void* src, int src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device == src_device) {
    detail::DeviceGuard guard(dst_device, "to");
    const cudaStream_t stream = detail::current_stream(dst_device);
    KEEL_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, stream), "to");
    KEEL_CUDA_CHECK(cudaStreamSynchronize(stream), "to");
    return;
  }
  // Between devices: cudaMemcpyPeer goes over NVLink/PCIe peer access when the devices have
  // it and is staged through the host otherwise; it is ordered after earlier work on both.
  {
    detail::DeviceGuard guard(dst_device, "to");
    KEEL_CUDA_CHECK(cudaMemcpyPeer(dst, dst_device, src, src_device, nbytes), "to");
    KEEL_CUDA_CHECK(cudaDeviceSynchronize(), "to");
  }
  detail::DeviceGuard guard(src_device, "to");
  KEEL_CUDA_CHECK(cudaDeviceSynchronize(), "to");
}

}  // namespace keel::cuda
