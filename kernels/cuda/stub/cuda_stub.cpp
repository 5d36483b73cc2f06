// The CUDA backend of a build without CUDA (KEEL_CUDA=OFF): every entry point throws a clear
// error, so a CUDA tensor fails at its first use instead of at link time.
#include "keel/kernels/cuda/cuda_kernels.h"

namespace keel {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  fail("[", op, "] no CUDA kernel in this build (Keel was built with KEEL_CUDA=OFF)");
}
}  // namespace

Allocator& cuda_allocator(int) { no_cuda("cuda"); }

namespace cuda {
bool is_available() { return false; }
int device_count() { return 0; }
void synchronize(int) { no_cuda("synchronize"); }
MemoryStats memory_stats(int) { no_cuda("memory_stats"); }
void reset_peak_memory_stats(int) { no_cuda("reset_peak_memory_stats"); }
void empty_cache() {}

void unary(UnaryOp, const Tensor&, const Tensor&) { no_cuda("unary"); }
void binary(BinaryOp, const Tensor&, const Tensor&, const Tensor&) { no_cuda("binary"); }
void where(const Tensor&, const Tensor&, const Tensor&, const Tensor&) { no_cuda("where"); }
void clamp(const Tensor&, const Tensor&, const Tensor&, const Tensor&) { no_cuda("clamp"); }
void copy(const Tensor&, const Tensor&) { no_cuda("copy"); }
void fill(const Tensor&, const Scalar&) { no_cuda("fill"); }
void reduce(ReduceOp, const Tensor&, const Tensor&, const std::vector<int64_t>&) { no_cuda("reduce"); }
void arg_reduce(bool, const Tensor&, const Tensor&, const Tensor&, int64_t) { no_cuda("arg_reduce"); }
void gather(const Tensor&, const Tensor&, int64_t, const Tensor&) { no_cuda("gather"); }
void scatter(const Tensor&, int64_t, const Tensor&, const Tensor&, bool) { no_cuda("scatter"); }
void index_select(const Tensor&, const Tensor&, int64_t, const Tensor&) { no_cuda("index_select"); }
void memcpy_host_to_device(void*, const void*, size_t, int) { no_cuda("to"); }
void memcpy_device_to_host(void*, const void*, size_t, int) { no_cuda("to"); }
void memcpy_device_to_device(void*, int, const void*, int, size_t) { no_cuda("to"); }
void random_fill(const Tensor&, int, double, double, PhiloxState) { no_cuda("random"); }
}  // namespace cuda

}  // namespace keel
