// Copies: copy_ (with broadcasting, dtype conversion and host <-> CUDA transfer), contiguous,
// clone, to(dtype), to(device), item, fill_.
//
// Backward: clone dy; to(dtype/device) dy converted back; copy_ sends dy (summed to the source's
// shape and converted) to the source and nothing to the overwritten value; fill_ cuts the history.
#include <cstring>

#include "keel/autograd/record.h"

#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/cuda/cuda_kernels.h"
#include "keel/ops/factory.h"

namespace keel {

namespace {
// Host <-> device copy of same-dtype, same-shape tensors: staged through contiguous buffers.
void copy_across_devices(const Tensor& dst, const Tensor& src) {
  const Tensor src_packed = src.contiguous();
  const Tensor dst_packed = dst.is_contiguous() ? dst : empty(dst.shape(), dst.options());
  const size_t nbytes = dst.nbytes();
  if (nbytes > 0) {
    if (src.is_cpu() && dst.is_cuda()) {
      cuda::memcpy_host_to_device(dst_packed.raw_data(), src_packed.raw_data(), nbytes, dst.device().index);
    } else if (src.is_cuda() && dst.is_cpu()) {
      cuda::memcpy_device_to_host(dst_packed.raw_data(), src_packed.raw_data(), nbytes, src.device().index);
    } else {
      cuda::memcpy_device_to_device(dst_packed.raw_data(), dst.device().index, src_packed.raw_data(),
                                    src.device().index, nbytes);
    }
  }
  if (!dst_packed.is_same(dst)) {
    if (dst.is_cuda()) cuda::copy(dst, dst_packed);
    else cpu::copy(dst, dst_packed);
  }
}
}  // namespace

Tensor& Tensor::copy_(const Tensor& source) {
  KEEL_CHECK(source.defined(), "[copy_] source tensor is undefined");
  const Shape& target = shape();
  if (source.shape() != target) broadcast_shapes(target, source.shape(), "copy_");
  KEEL_CHECK(source.dim() <= dim(), "[copy_] cannot broadcast source of shape ", source.shape(),
             " to destination of shape ", target);
  check_no_internal_overlap(*this, "copy_");
  if (autograd::in_place_records("copy_", *this, source)) {
    return autograd::in_place_with_history("copy_", *this, [&](const Tensor&) {
      const Tensor converted = source.to(device(), dtype());
      return converted.shape() == target ? converted : converted.expand(target);
    });
  }
  // A source that is another view of the destination's memory (x[1:].copy_(x[:-1]),
  // x.copy_(x.t())) is read in full before anything is written.
  Tensor src = unaliased_input(source.shape() == target ? source : source.expand(target), *this);
  if (device() == src.device()) {
    if (is_cuda()) cuda::copy(*this, src);
    else cpu::copy(*this, src);
  } else {
    // Convert on the source device first, then move bytes.
    if (src.dtype() != dtype()) src = src.to(dtype());
    copy_across_devices(*this, src);
  }
  bump_version();
  return *this;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  autograd::OpRecord record("clone", *this);
  Tensor out = empty(shape(), options());
  if (is_cuda()) cuda::copy(out, *this);
  else cpu::copy(out, *this);
  if (record) record.finish({out}, {}, [](const autograd::VjpArgs& a) { return autograd::TensorList{a.grad()}; });
  return out;
}

namespace {
// The vjp of a conversion: the gradient converted back to the input's dtype and device.
void record_conversion(autograd::OpRecord& record, const Tensor& out, const Tensor& input) {
  record.finish({out}, {}, [device = input.device(), dtype = input.dtype()](const autograd::VjpArgs& a) {
    return autograd::TensorList{a.grad().to(device, dtype)};
  });
}
}  // namespace

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  autograd::OpRecord record("to", *this);
  Tensor out = empty(shape(), {target, device()});
  if (is_cuda()) cuda::copy(out, *this);
  else cpu::copy(out, *this);
  if (record) record_conversion(record, out, *this);
  return out;
}

Tensor Tensor::to(Device target) const { return to(target, dtype()); }

Tensor Tensor::to(Device target, DType target_dtype) const {
  if (target == device()) return to(target_dtype);
  autograd::OpRecord record("to", *this);
  Tensor out = empty(shape(), {target_dtype, target});
  out.copy_(*this);
  if (record) record_conversion(record, out, *this);
  return out;
}

Scalar Tensor::item_scalar() const {
  KEEL_CHECK(numel() == 1, "[item] a tensor with ", numel(), " elements (shape ", shape(),
             ") cannot be converted to a scalar");
  const Tensor host = is_cpu() ? *this : to(Device::cpu());
  const void* pointer = host.raw_data();
  switch (dtype()) {
    case DType::f32: return *static_cast<const float*>(pointer);
    case DType::f64: return *static_cast<const double*>(pointer);
    case DType::f16: return static_cast<double>(static_cast<float>(*static_cast<const Half*>(pointer)));
    case DType::bf16: return static_cast<double>(static_cast<float>(*static_cast<const BFloat16*>(pointer)));
    case DType::i8: return *static_cast<const int8_t*>(pointer);
    case DType::u8: return *static_cast<const uint8_t*>(pointer);
    case DType::i32: return *static_cast<const int32_t*>(pointer);
    case DType::i64: return *static_cast<const int64_t*>(pointer);
    case DType::bool_: return *static_cast<const bool*>(pointer);
  }
  fail("[item] unknown dtype");
}

Tensor& Tensor::fill_(const Scalar& value) {
  if (autograd::in_place_records("fill_", *this))
    return autograd::in_place_with_history("fill_", *this, [&](const Tensor& old) { return full_like(old, value); });
  if (is_cuda()) cuda::fill(*this, value);
  else cpu::fill(*this, value);
  bump_version();
  return *this;
}

}  // namespace keel
