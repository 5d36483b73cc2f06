#pragma once
// Storage: reference-counted bytes on one device, freed by the allocator (or deleter) that
// made them. Tensors are views into a Storage; several tensors may share one.
#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>

#include "keel/core/device.h"

namespace keel {

// Frees one allocation. Allocators hand out memory together with the way to free it.
using Deleter = std::function<void(void*)>;

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* pointer, size_t nbytes) = 0;
  virtual Device device() const = 0;
};

// The allocator for a device: 64-byte aligned host memory, or the CUDA caching allocator.
Allocator& allocator_for(Device device);

class Storage {
 public:
  // Allocates nbytes with the device's allocator.
  Storage(size_t nbytes, Device device);
  // Wraps memory the caller owns; `deleter` (may be empty) runs when the last user lets go.
  Storage(void* data, size_t nbytes, Device device, Deleter deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  // Bumped by every in-place write to any tensor on this storage (autograd checks it).
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;  // set when Keel allocated the bytes
  Deleter deleter_;                 // set for from_blob memory
  std::atomic<uint64_t> version_{0};
};

// Memory statistics of a device's allocator (CUDA's caching allocator fills every field).
struct MemoryStats {
  size_t allocated_bytes = 0;       // in tensors now
  size_t reserved_bytes = 0;        // held from the driver, cached or in use
  size_t peak_allocated_bytes = 0;  // most allocated at any time since the last reset
  size_t num_allocations = 0;       // allocations handed out (successful calls)
  size_t num_device_mallocs = 0;    // calls that reached cudaMalloc (cache misses)
};

// Host allocator statistics: num_device_mallocs counts calls that reached the system
// allocator; blocks of 1 MiB and more are cached for reuse (at most 2 GiB).
MemoryStats cpu_memory_stats();
void cpu_reset_peak_memory_stats();
void cpu_empty_cache();  // returns cached host blocks to the system

namespace cuda {
MemoryStats memory_stats(int device = 0);
void reset_peak_memory_stats(int device = 0);
void empty_cache();  // returns cached, unused blocks to the driver
}  // namespace cuda

}  // namespace keel
