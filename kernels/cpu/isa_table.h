#pragma once
// Function table of the kernels compiled once per instruction set (*.isa.cpp). Each variant
// lives in namespace keel::cpu::<isa> and fills one table; dispatch.cpp picks a table once.
#include "keel/kernels/cpu/cpu_kernels.h"

namespace keel::cpu {

struct IsaKernels {
  void (*unary)(UnaryOp, const Tensor&, const Tensor&);
  void (*binary)(BinaryOp, const Tensor&, const Tensor&, const Tensor&);
  void (*where)(const Tensor&, const Tensor&, const Tensor&, const Tensor&);
  void (*clamp)(const Tensor&, const Tensor&, const Tensor&, const Tensor&);
  void (*copy)(const Tensor&, const Tensor&);
  void (*fill)(const Tensor&, const Scalar&);
  void (*reduce)(ReduceOp, const Tensor&, const Tensor&, const std::vector<int64_t>&);
  void (*arg_reduce)(bool, const Tensor&, const Tensor&, const Tensor&, int64_t);
  void (*matmul)(const Tensor&, const Tensor&, const Tensor&, const MatmulEpilogue&);
  void (*flash_attention_forward)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                  const Tensor&, bool, double);
  void (*flash_attention_backward)(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                   const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool,
                                   double);
  void (*random_fill)(const Tensor&, int, double, double, PhiloxState);
  void (*gelu_erf_backward)(const Tensor&, const Tensor&, const Tensor&);
};

namespace baseline { const IsaKernels& isa_kernels(); }
namespace avx2 { const IsaKernels& isa_kernels(); }
namespace avx512 { const IsaKernels& isa_kernels(); }

}  // namespace keel::cpu
