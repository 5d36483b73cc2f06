// This instruction set's kernel table (see isa_table.h).
#include "keel/kernels/cpu/isa_table.h"

namespace keel::cpu::KEEL_CPU_ISA {

void unary(UnaryOp, const Tensor&, const Tensor&);
void binary(BinaryOp, const Tensor&, const Tensor&, const Tensor&);
void where(const Tensor&, const Tensor&, const Tensor&, const Tensor&);
void clamp(const Tensor&, const Tensor&, const Tensor&, const Tensor&);
void copy(const Tensor&, const Tensor&);
void fill(const Tensor&, const Scalar&);
void reduce(ReduceOp, const Tensor&, const Tensor&, const std::vector<int64_t>&);
void arg_reduce(bool, const Tensor&, const Tensor&, const Tensor&, int64_t);
void matmul(const Tensor&, const Tensor&, const Tensor&, const MatmulEpilogue&);
void flash_attention_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                             bool, double);
void flash_attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool, double);
void random_fill(const Tensor&, int, double, double, PhiloxState);
void gelu_erf_backward(const Tensor&, const Tensor&, const Tensor&);

const IsaKernels& isa_kernels() {
  static const IsaKernels table{&unary, &binary, &where, &clamp, &copy, &fill, &reduce, &arg_reduce, &matmul,
                                &flash_attention_forward, &flash_attention_backward, &random_fill,
                                &gelu_erf_backward};
  return table;
}

}  // namespace keel::cpu::KEEL_CPU_ISA
