// Devices, storage and allocators on the host, and the errors a CUDA tensor gives without CUDA.
#include "test_util.h"

using namespace keel;

TEST_CASE("devices parse and print", "[device]") {
  CHECK(parse_device("cpu") == Device::cpu());
  CHECK(parse_device("cuda") == Device::cuda(0));
  CHECK(parse_device("cuda:3") == Device::cuda(3));
  CHECK(Device::cuda(1).str() == "cuda:1");
  CHECK(Device::cpu().str() == "cpu");
  REQUIRE_THROWS_AS(parse_device("gpu"), Error);
  REQUIRE_THROWS_AS(parse_device("cuda:"), Error);
  REQUIRE_THROWS_AS(parse_device("cuda:x1"), Error);
}

TEST_CASE("host storage is 64-byte aligned and freed by its allocator", "[device]") {
  for (int64_t size : {1, 3, 31, 257, 4099}) {
    const Tensor t = empty({size}, {.dtype = DType::u8});
    CHECK(reinterpret_cast<uintptr_t>(t.raw_data()) % 64 == 0);
    CHECK(t.storage()->nbytes() == static_cast<size_t>(size));
  }
  const Tensor none = empty({0, 5});
  CHECK(none.numel() == 0);
  CHECK(none.nbytes() == 0);
  REQUIRE_THROWS_AS(empty({2, -1}), Error);
}

TEST_CASE("a CUDA tensor without a CUDA device is a clear error", "[device]") {
  if (cuda::is_available()) {
    WARN("this machine has a CUDA device: the no-device error path is not exercised here");
    return;
  }
  try {
    empty({2, 3}, {.device = Device::cuda(0)});
    FAIL("no error");
  } catch (const Error& error) {
    INFO(error.what());
    CHECK(std::string(error.what()).find("CUDA") != std::string::npos);
  }
  REQUIRE_THROWS_AS(ones({2}).to(Device::cuda(0)), Error);
  CHECK(cuda::device_count() == 0);
}

TEST_CASE("large host blocks are cached and reused without a new system allocation", "[device]") {
  cpu_empty_cache();
  const size_t bytes = size_t{3} << 20;
  void* first_pointer = nullptr;
  {
    const Tensor big = empty({static_cast<int64_t>(bytes)}, {.dtype = DType::u8});
    first_pointer = big.raw_data();
    CHECK(reinterpret_cast<uintptr_t>(first_pointer) % 64 == 0);
    CHECK(cpu_memory_stats().allocated_bytes >= bytes);
  }
  const MemoryStats after_free = cpu_memory_stats();
  const Tensor again = empty({static_cast<int64_t>(bytes)}, {.dtype = DType::u8});
  CHECK(again.raw_data() == first_pointer);
  CHECK(cpu_memory_stats().num_device_mallocs == after_free.num_device_mallocs);
  CHECK(cpu_memory_stats().peak_allocated_bytes >= bytes);
  // A slightly smaller request of the same size class reuses it too; empty_cache releases it.
  cpu_empty_cache();
  CHECK(cpu_memory_stats().reserved_bytes >= bytes);  // `again` is still alive
}
