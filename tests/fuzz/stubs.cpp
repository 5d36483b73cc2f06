// Stand-ins for the Tensor methods that core/tensor.cpp calls but that live in ops/ (the fuzz
// build links only core/ and the loaders, not the kernels). Weak: a real definition linked in
// (a target that adds ops/ sources) wins. A loader that reaches one of these at run time aborts,
// which the fuzzer reports as a crash naming the method: add its source to the target instead.
#include <cstdio>
#include <cstdlib>

#include "keel/core/tensor.h"

namespace keel {

namespace {
[[noreturn]] void not_linked(const char* method) {
  std::fprintf(stderr, "[fuzz] Tensor::%s is not linked into the fuzz build (see tests/fuzz/CMakeLists.txt)\n", method);
  std::abort();
}
}  // namespace

#define KEEL_FUZZ_STUB __attribute__((weak))
KEEL_FUZZ_STUB Tensor Tensor::alias() const { not_linked("alias"); }
KEEL_FUZZ_STUB Tensor Tensor::clone() const { not_linked("clone"); }
KEEL_FUZZ_STUB Tensor Tensor::contiguous() const { not_linked("contiguous"); }
KEEL_FUZZ_STUB Tensor Tensor::detach() const { not_linked("detach"); }
KEEL_FUZZ_STUB Tensor Tensor::to(Device) const { not_linked("to(Device)"); }
KEEL_FUZZ_STUB Tensor Tensor::reshape(Shape) const { not_linked("reshape"); }
KEEL_FUZZ_STUB Tensor Tensor::view(Shape) const { not_linked("view"); }
KEEL_FUZZ_STUB Tensor Tensor::slice(int64_t, int64_t, int64_t, int64_t) const { not_linked("slice"); }
KEEL_FUZZ_STUB Tensor Tensor::transpose(int64_t, int64_t) const { not_linked("transpose"); }

}  // namespace keel
