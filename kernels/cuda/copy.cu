// CUDA copy (with dtype conversion) and fill, same contracts as cpu::copy and cpu::fill.
//
//   copy:  dst[i] = convert<dst dtype>(src[i])   (kernels/convert.h: NaN -> 0 and saturation
//          for float -> int, x != 0 for bool, round to nearest even for f16/bf16)
//   fill:  dst[i] = value converted once on the host, as the CPU does
//   Same-dtype copies between contiguous tensors are a cudaMemcpyAsync on the stream.
//   bytes per element: copy itemsize(src) + itemsize(dst); fill itemsize(dst).
#include "keel/kernels/convert.h"
#include "keel/kernels/cuda/cuda_kernels.h"
#include "keel/kernels/cuda/elementwise.cuh"
#include "keel/kernels/dispatch.h"

namespace keel::cuda {

namespace {

template <typename To, typename From> struct ConvertFunctor {
  __device__ __forceinline__ To operator()(From value) const { return convert<To, From>(value); }
};

template <typename T> struct FillFunctor {
  T value;
  __device__ __forceinline__ T operator()() const { return value; }
};

}  // namespace

void copy(const Tensor& dst, const Tensor& src) {
  KEEL_ASSERT(dst.shape() == src.shape());
  if (dst.numel() == 0) return;
  KEEL_CHECK(dst.device() == src.device(), "[copy] expected tensors on one CUDA device, got ",
             dst.device().str(), " and ", src.device().str());
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    const int device = dst.device().index;
    detail::DeviceGuard guard(device, "copy");
    if (dst.raw_data() != src.raw_data()) {
      KEEL_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), dst.nbytes(), cudaMemcpyDeviceToDevice,
                                      detail::current_stream(device)),
                      "copy");
    }
    return;
  }
  dispatch_all(dst.dtype(), "copy", [&]<typename To>() {
    dispatch_all(src.dtype(), "copy", [&]<typename From>() {
      detail::elementwise<To, From>("copy", ConvertFunctor<To, From>{}, {&dst, &src});
    });
  });
}

void fill(const Tensor& dst, const Scalar& value) {
  dispatch_all(dst.dtype(), "fill", [&]<typename T>() {
    const T filled = std::is_same_v<T, bool> || std::is_integral_v<T>
                         ? (value.is_floating() ? convert<T, double>(value.to_double()) : value.to<T>())
                         : convert<T, double>(value.to_double());
    detail::elementwise<T>("fill", FillFunctor<T>{filled}, {&dst});
  });
}

}  // namespace keel::cuda
