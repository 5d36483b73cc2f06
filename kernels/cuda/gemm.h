#pragma once
// The CUDA matrix product (cuBLAS, kernels/cuda/gemm.cpp), with the contract of cpu::matmul
// (kernels/cpu/cpu_kernels.h) except that out must be contiguous:
//   out[..., M, N] = a[..., M, K] @ b[..., K, N]; a and b broadcast to out's batch dims (stride-0
//   views allowed), any strides; one dtype for all three (f32, f64, f16, bf16; 16-bit accumulates
//   in f32); K = 0 writes zeros. In a build without CUDA, kernels/cuda/stub/gemm_stub.cpp throws.
#include "keel/core/tensor.h"

namespace keel::cuda {

void matmul(const Tensor& out, const Tensor& a, const Tensor& b);

}  // namespace keel::cuda
