// The CUDA caching allocator behind Storage on cuda:N.
//
// cudaMalloc and cudaFree are slow (and cudaFree synchronizes the device), so freed blocks are
// kept and handed out again:
//   size classes  requests round up to 512 B below 1 MiB and to 2 MiB above, so that blocks of
//                 nearby sizes are interchangeable;
//   pools         one free list per (device, stream): a block freed by a stream is reused only
//                 by that stream, whose order guarantees the old kernels are done with it;
//   reuse         best fit among free blocks of the pool, accepted when it wastes at most 1/8 of
//                 the rounded size (blocks are not split);
//   out of memory the device's cached blocks are freed and cudaMalloc retried once, then a
//                 keel::Error says what was asked, allocated and reserved.
// Everything is behind one mutex. The allocator is never destroyed, so tensors that outlive
// main() can still be freed without touching a torn-down CUDA runtime.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "keel/core/storage.h"
#include "keel/kernels/cuda/cuda_common.h"

namespace keel {

namespace {

constexpr size_t kSmallLimit = size_t{1} << 20;    // 1 MiB
constexpr size_t kSmallGranularity = 512;           // below kSmallLimit
constexpr size_t kLargeGranularity = size_t{2} << 20;  // 2 MiB, at and above kSmallLimit

size_t round_size(size_t nbytes) {
  const size_t granularity = nbytes < kSmallLimit ? kSmallGranularity : kLargeGranularity;
  return (nbytes + granularity - 1) / granularity * granularity;
}

std::string format_bytes(size_t bytes) {
  std::ostringstream stream;
  stream << bytes << " bytes";
  if (bytes >= (size_t{1} << 20)) stream << " (" << (static_cast<double>(bytes) / (1 << 20)) << " MiB)";
  return stream.str();
}

class CachingAllocator {
 public:
  void* allocate(int device, size_t nbytes) {
    if (nbytes == 0) return nullptr;
    const size_t size = round_size(nbytes);
    const cudaStream_t stream = cuda::detail::current_stream(device);
    std::lock_guard<std::mutex> lock(mutex_);
    void* pointer = nullptr;
    std::multimap<size_t, void*>& pool = pools_[PoolKey{device, stream}];
    auto found = pool.lower_bound(size);
    size_t block_size = size;
    if (found != pool.end() && found->first <= size + size / 8) {
      block_size = found->first;
      pointer = found->second;
      pool.erase(found);
    } else {
      pointer = device_malloc(device, size, nbytes);
    }
    live_[pointer] = Block{block_size, device, stream};
    // Counted once the block is handed out: a failed (out-of-memory) call changes no statistic.
    MemoryStats& stats = stats_for(device);
    ++stats.num_allocations;
    stats.allocated_bytes += block_size;
    stats.peak_allocated_bytes = std::max(stats.peak_allocated_bytes, stats.allocated_bytes);
    return pointer;
  }

  void deallocate(void* pointer) {
    if (pointer == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = live_.find(pointer);
    KEEL_ASSERT(found != live_.end());
    const Block block = found->second;
    live_.erase(found);
    stats_for(block.device).allocated_bytes -= block.size;
    pools_[PoolKey{block.device, block.stream}].emplace(block.size, pointer);
  }

  // Frees the cached blocks of one device (device >= 0) or of every device (device < 0).
  void empty_cache(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached(device);
  }

  MemoryStats stats(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_for(device);
  }

  void reset_peak(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    MemoryStats& stats = stats_for(device);
    stats.peak_allocated_bytes = stats.allocated_bytes;
  }

 private:
  struct Block {
    size_t size;
    int device;
    cudaStream_t stream;
  };
  struct PoolKey {
    int device;
    cudaStream_t stream;
    bool operator<(const PoolKey& other) const {
      return device != other.device ? device < other.device : std::less<cudaStream_t>()(stream, other.stream);
    }
  };

  MemoryStats& stats_for(int device) {
    if (device >= static_cast<int>(stats_.size())) stats_.resize(static_cast<size_t>(device) + 1);
    return stats_[device];
  }

  // cudaMalloc of `size` bytes on `device`; on out-of-memory frees the device's cache and
  // tries once more. Called with mutex_ held.
  void* device_malloc(int device, size_t size, size_t requested) {
    cuda::detail::DeviceGuard guard(device, "empty");
    void* pointer = nullptr;
    cudaError_t status = cudaMalloc(&pointer, size);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_cached(device);
      status = cudaMalloc(&pointer, size);
      if (status == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        const MemoryStats& stats = stats_for(device);
        fail("[empty] CUDA out of memory on cuda:", device, ": tried to allocate ", format_bytes(requested),
             " (a block of ", format_bytes(size), "); ", format_bytes(stats.allocated_bytes),
             " allocated in tensors, ", format_bytes(stats.reserved_bytes),
             " reserved by Keel (the cache was emptied and the allocation retried)");
      }
    }
    KEEL_CUDA_CHECK(status, "empty");
    MemoryStats& stats = stats_for(device);
    stats.reserved_bytes += size;
    ++stats.num_device_mallocs;
    return pointer;
  }

  // Called with mutex_ held.
  void release_cached(int device) {
    for (auto& [key, pool] : pools_) {
      if (device >= 0 && key.device != device) continue;
      if (pool.empty()) continue;
      cuda::detail::DeviceGuard guard(key.device, "empty_cache");
      for (auto block = pool.begin(); block != pool.end();) {
        KEEL_CUDA_CHECK(cudaFree(block->second), "empty_cache");
        stats_for(key.device).reserved_bytes -= block->first;
        block = pool.erase(block);
      }
    }
  }

  std::mutex mutex_;
  std::map<PoolKey, std::multimap<size_t, void*>> pools_;  // free blocks by size
  std::unordered_map<void*, Block> live_;                  // blocks in tensors
  std::vector<MemoryStats> stats_;                          // by device
};

CachingAllocator& caching_allocator() {
  static CachingAllocator* instance = new CachingAllocator();  // never destroyed, see above
  return *instance;
}

class DeviceAllocator final : public Allocator {
 public:
  explicit DeviceAllocator(int device) : device_(device) {}
  void* allocate(size_t nbytes) override { return caching_allocator().allocate(device_, nbytes); }
  void deallocate(void* pointer, size_t) override { caching_allocator().deallocate(pointer); }
  Device device() const override { return Device::cuda(device_); }

 private:
  int device_;
};

int checked_device_count(const char* op) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    fail("[", op, "] no CUDA device is available: ", cudaGetErrorString(status));
  }
  return count;
}

void check_device(int device, const char* op) {
  const int count = checked_device_count(op);
  KEEL_CHECK(device >= 0 && device < count, "[", op, "] device cuda:", device, " does not exist (this machine has ",
             count, " CUDA device", count == 1 ? "" : "s", ")");
}

}  // namespace

Allocator& cuda_allocator(int device) {
  // Leaked like the cache: a tensor created while static destructors run still finds them.
  static std::mutex& mutex = *new std::mutex();
  static std::vector<std::unique_ptr<DeviceAllocator>>* allocators =
      new std::vector<std::unique_ptr<DeviceAllocator>>();  // never destroyed, like the cache
  std::lock_guard<std::mutex> lock(mutex);
  if (device >= 0 && device < static_cast<int>(allocators->size()) && (*allocators)[device]) {
    return *(*allocators)[device];
  }
  check_device(device, "empty");
  if (device >= static_cast<int>(allocators->size())) allocators->resize(static_cast<size_t>(device) + 1);
  (*allocators)[device] = std::make_unique<DeviceAllocator>(device);
  return *(*allocators)[device];
}

namespace cuda {

MemoryStats memory_stats(int device) {
  KEEL_CHECK(device >= 0, "[memory_stats] device index must be >= 0, got ", device);
  return caching_allocator().stats(device);
}

void reset_peak_memory_stats(int device) {
  KEEL_CHECK(device >= 0, "[reset_peak_memory_stats] device index must be >= 0, got ", device);
  caching_allocator().reset_peak(device);
}

void empty_cache() { caching_allocator().empty_cache(-1); }

}  // namespace cuda

}  // namespace keel
