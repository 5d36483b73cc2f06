#include "keel/core/storage.h"

#include <cstdlib>
#include <new>

#include "keel/core/error.h"

namespace keel {
namespace {
// Host memory aligned to 64 bytes (a cache line, and a full AVX-512 vector).
class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    const size_t rounded = (nbytes + 63) & ~size_t{63};
    void* pointer = std::aligned_alloc(64, rounded);
    KEEL_CHECK(pointer != nullptr, "[empty] out of host memory allocating ", nbytes, " bytes");
    return pointer;
  }
  void deallocate(void* pointer, size_t) override { std::free(pointer); }
  Device device() const override { return Device::cpu(); }
};
}  // namespace

Allocator& cuda_allocator(int device);  // kernels/cuda (or its stub)

Allocator& allocator_for(Device device) {
  static CpuAllocator cpu_allocator;
  if (device.is_cpu()) return cpu_allocator;
  return cuda_allocator(device.index);
}

Storage::Storage(size_t nbytes, Device device)
    : nbytes_(nbytes), device_(device), allocator_(&allocator_for(device)) {
  data_ = allocator_->allocate(nbytes);
}

Storage::Storage(void* data, size_t nbytes, Device device, Deleter deleter)
    : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)) {}

Storage::~Storage() {
  if (allocator_) {
    allocator_->deallocate(data_, nbytes_);
  } else if (deleter_) {
    deleter_(data_);
  }
}

}  // namespace keel
