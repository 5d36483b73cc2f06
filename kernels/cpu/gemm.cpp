// Binds cpu::matmul to the instruction-set variant of kernels/cpu/gemm.isa.cpp that the rest of
// the CPU kernels use (cpu::active_isa(), chosen once from CPUID or KEEL_CPU_ISA).
#include <string_view>

#include "keel/kernels/cpu/cpu_kernels.h"

namespace keel::cpu {

namespace baseline { void matmul(const Tensor& out, const Tensor& a, const Tensor& b); }
namespace avx2 { void matmul(const Tensor& out, const Tensor& a, const Tensor& b); }
namespace avx512 { void matmul(const Tensor& out, const Tensor& a, const Tensor& b); }

void matmul(const Tensor& out, const Tensor& a, const Tensor& b) {
  const std::string_view isa = active_isa();
  if (isa == "avx512") avx512::matmul(out, a, b);
  else if (isa == "avx2") avx2::matmul(out, a, b);
  else baseline::matmul(out, a, b);
}

}  // namespace keel::cpu
