// Picks the CPU kernel table once, from CPUID, unless KEEL_CPU_ISA asks for a lower one.
#include <cstdlib>
#include <string>

#include "keel/kernels/cpu/isa_table.h"

namespace keel::cpu {
namespace {

struct Selected {
  const IsaKernels* table;
  std::string_view name;
};

Selected select() {
  __builtin_cpu_init();
  // x86-64-v4 (AVX-512 F/BW/CD/DQ/VL) and x86-64-v3 (AVX2, FMA, BMI, F16C, ...), as the
  // variants were compiled with -march=x86-64-v4 / -v3.
  const bool has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vl");
  const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                        __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c");
  std::string requested = "avx512";
  if (const char* env = std::getenv("KEEL_CPU_ISA")) requested = env;
  KEEL_CHECK(requested == "avx512" || requested == "avx2" || requested == "baseline",
             "[cpu] KEEL_CPU_ISA='", requested, "' is not one of avx512, avx2, baseline");
  if (requested == "avx512" && has_avx512) return {&avx512::isa_kernels(), "avx512"};
  if (requested != "baseline" && has_avx2) return {&avx2::isa_kernels(), "avx2"};
  return {&baseline::isa_kernels(), "baseline"};
}

const Selected& selected() {
  static const Selected chosen = select();
  return chosen;
}

const IsaKernels& table() { return *selected().table; }

}  // namespace

std::string_view active_isa() { return selected().name; }

void unary(UnaryOp op, const Tensor& out, const Tensor& x) { table().unary(op, out, x); }
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) { table().binary(op, out, a, b); }
void where(const Tensor& out, const Tensor& condition, const Tensor& a, const Tensor& b) {
  table().where(out, condition, a, b);
}
void clamp(const Tensor& out, const Tensor& x, const Tensor& low, const Tensor& high) {
  table().clamp(out, x, low, high);
}
void copy(const Tensor& dst, const Tensor& src) { table().copy(dst, src); }
void fill(const Tensor& dst, const Scalar& value) { table().fill(dst, value); }
void reduce(ReduceOp op, const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  table().reduce(op, out, x, dims);
}
void arg_reduce(bool is_max, const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim) {
  table().arg_reduce(is_max, values, indices, x, dim);
}
void matmul(const Tensor& out, const Tensor& a, const Tensor& b) { table().matmul(out, a, b); }

}  // namespace keel::cpu
