#pragma once
// The CUDA kernels that ops call, with the same contracts as kernels/cpu/cpu_kernels.h:
// ops check arguments, broadcast inputs to the output's shape and convert them to the compute
// dtype; kernels run on the current stream of the tensors' device. In a build without CUDA,
// kernels/cuda/stub/ defines each of these to throw "[op] no CUDA kernel in this build".
#include <cstddef>
#include <vector>

#include "keel/core/rng.h"
#include "keel/core/tensor.h"
#include "keel/kernels/op_math.h"
#include "keel/kernels/reduce_op.h"

namespace keel::cuda {

void unary(UnaryOp op, const Tensor& out, const Tensor& x);
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);
void where(const Tensor& out, const Tensor& condition, const Tensor& a, const Tensor& b);
void clamp(const Tensor& out, const Tensor& x, const Tensor& low, const Tensor& high);
// dst = src converted to dst's dtype; both on the same CUDA device, src broadcast to dst.
void copy(const Tensor& dst, const Tensor& src);
void fill(const Tensor& dst, const Scalar& value);
void reduce(ReduceOp op, const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims);
void arg_reduce(bool is_max, const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim);

// Indexing, with the contracts of the cpu:: functions of the same names (kernels/cpu/cpu_kernels.h):
// ranks equal and >= 1, dim wrapped, i64 or i32 indices bounds-checked (keel::Error) before any write.
void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index);
void scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source, bool accumulate);
void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index);

// Contiguous byte copies between host and device (or device and device), synchronous.
void memcpy_host_to_device(void* device_dst, const void* host_src, size_t nbytes, int device);
void memcpy_device_to_host(void* host_dst, const void* device_src, size_t nbytes, int device);
void memcpy_device_to_device(void* dst, int dst_device, const void* src, int src_device, size_t nbytes);

// Random draws into a contiguous f32/f64/f16/bf16 tensor, with the numbers the CPU draws for
// the same state (core/rng.h); kinds as cpu::random_fill.
void random_fill(const Tensor& out, int kind, double a, double b, PhiloxState state);

}  // namespace keel::cuda
