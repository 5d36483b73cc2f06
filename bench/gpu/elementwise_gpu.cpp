// GPU bandwidth of Keel's CUDA elementwise and reduction kernels against cudaMemcpy, measured in
// the same process on the same buffers.
//
//   op        bytes moved per call (N f32 elements)
//   memcpy    2 * 4N   (cudaMemcpyAsync device to device: the practical bandwidth ceiling)
//   add, mul  3 * 4N   (read a, read b, write out)
//   exp       2 * 4N
//   sum       4N       (all elements to one value: two passes, the second reads ~1 KiB)
// GB/s = bytes / median time (CUDA events around each call, after a warm-up call). Each
// result is checked against the CPU on a prefix before it is timed; a wrong result exits 1.
//
// Usage: elementwise_gpu [N] [repeats]     (defaults: 64M elements, 20 repeats)
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <keel/keel.h>

using namespace keel;

namespace {

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "FAIL: %s: %s\n", what, cudaGetErrorString(status));
    std::exit(1);
  }
}

// Median milliseconds of `repeats` calls of f, each bracketed by CUDA events.
double median_ms(const std::function<void()>& f, int repeats) {
  cudaEvent_t start, stop;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
  f();  // warm-up: fills the allocator's cache and loads the kernel
  check_cuda(cudaDeviceSynchronize(), "warm-up");
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    check_cuda(cudaEventRecord(start), "cudaEventRecord");
    f();
    check_cuda(cudaEventRecord(stop), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// The first `count` elements of a device result against the same computation on the CPU.
void check_prefix(const std::string& op, const Tensor& device_result, const Tensor& host_expected, int64_t count) {
  const Tensor got = device_result.narrow(0, 0, count).cpu();
  const float* g = got.data_ptr<float>();
  const float* e = host_expected.data_ptr<float>();
  for (int64_t i = 0; i < count; ++i) {
    if (!(std::fabs(g[i] - e[i]) <= 1e-6f + 1e-5f * std::fabs(e[i]))) {
      std::fprintf(stderr, "FAIL: %s element %lld: got %.9g, expected %.9g\n", op.c_str(), static_cast<long long>(i),
                   g[i], e[i]);
      std::exit(1);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t n = argc > 1 ? std::atoll(argv[1]) : (int64_t{64} << 20);
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 20;
  if (!cuda::is_available()) {
    std::fprintf(stderr, "FAIL: no CUDA device is available\n");
    return 1;
  }
  cudaDeviceProp properties{};
  check_cuda(cudaGetDeviceProperties(&properties, 0), "cudaGetDeviceProperties");
  std::printf("device: %s (%d SMs), N = %lld f32 elements, median of %d runs\n", properties.name,
              properties.multiProcessorCount, static_cast<long long>(n), repeats);

  try {
    const TensorOptions on_device{DType::f32, Device::cuda(0)};
    const Tensor a = rand({n}, on_device) + 0.5;
    const Tensor b = rand({n}, on_device) + 0.5;
    const int64_t prefix = std::min<int64_t>(n, 1 << 20);
    const Tensor a_host = a.narrow(0, 0, prefix).cpu(), b_host = b.narrow(0, 0, prefix).cpu();

    check_prefix("add", add(a, b), add(a_host, b_host), prefix);
    check_prefix("mul", mul(a, b), mul(a_host, b_host), prefix);
    check_prefix("exp", exp(a), exp(a_host), prefix);
    const double total = sum(ones({n}, on_device)).item<double>();
    if (std::fabs(total - static_cast<double>(n)) > 1e-5 * static_cast<double>(n)) {
      std::fprintf(stderr, "FAIL: sum of %lld ones gave %.9g\n", static_cast<long long>(n), total);
      return 1;
    }

    const double bytes = 4.0 * static_cast<double>(n);
    void* copy_target = nullptr;
    check_cuda(cudaMalloc(&copy_target, static_cast<size_t>(bytes)), "cudaMalloc");
    struct Row {
      std::string op;
      double bytes_moved, ms;
    };
    std::vector<Row> rows;
    rows.push_back({"memcpy d2d", 2 * bytes, median_ms([&] {
                      check_cuda(cudaMemcpyAsync(copy_target, a.raw_data(), static_cast<size_t>(bytes),
                                                 cudaMemcpyDeviceToDevice),
                                 "cudaMemcpyAsync");
                    }, repeats)});
    Tensor out;
    rows.push_back({"add", 3 * bytes, median_ms([&] { out = add(a, b); }, repeats)});
    rows.push_back({"mul", 3 * bytes, median_ms([&] { out = mul(a, b); }, repeats)});
    rows.push_back({"exp", 2 * bytes, median_ms([&] { out = exp(a); }, repeats)});
    rows.push_back({"sum", bytes, median_ms([&] { out = sum(a); }, repeats)});
    check_cuda(cudaFree(copy_target), "cudaFree");

    const double peak = rows[0].bytes_moved / (rows[0].ms * 1e-3) / 1e9;
    std::printf("\n%-12s %10s %10s %12s\n", "op", "ms", "GB/s", "% of memcpy");
    for (const Row& row : rows) {
      const double gbps = row.bytes_moved / (row.ms * 1e-3) / 1e9;
      std::printf("%-12s %10.3f %10.1f %11.1f%%\n", row.op.c_str(), row.ms, gbps, 100.0 * gbps / peak);
    }
  } catch (const Error& error) {
    std::fprintf(stderr, "FAIL: %s\n", error.what());
    return 1;
  }
  return 0;
}
