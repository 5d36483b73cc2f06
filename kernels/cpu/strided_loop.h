#pragma once
// The CPU strided-iteration engine behind every elementwise kernel.
//
// N operands (operand 0 is the output) of one shape, each with its own byte strides (0 for a
// broadcast dim). plan() drops size-1 dims and merges neighbouring dims that are contiguous
// for every operand, so that a contiguous tensor of any shape becomes one long row. run() walks
// the rows, handing the innermost run of elements to `inner(pointers, byte_strides, count)`:
// kernels test byte_strides for the contiguous case and write plain loops the compiler
// vectorizes. Above kParallelGrain elements the index range is split across OpenMP threads.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "keel/core/tensor.h"

namespace keel::cpu {

inline constexpr int64_t kParallelGrain = 32768;  // elements; below this one thread is faster
inline constexpr int kMaxLoopDims = 25;

template <int N> struct StridedPlan {
  int ndim = 0;                                      // >= 1 after plan(); innermost last
  std::array<int64_t, kMaxLoopDims> sizes{};
  std::array<std::array<int64_t, kMaxLoopDims>, N> strides{};  // bytes
  std::array<char*, N> base{};
  int64_t numel = 0;
};

template <int N> StridedPlan<N> plan(const std::array<const Tensor*, N>& operands) {
  StridedPlan<N> result;
  const Tensor& out = *operands[0];
  const Shape& shape = out.shape();
  result.numel = out.numel();
  for (int k = 0; k < N; ++k) result.base[k] = static_cast<char*>(operands[k]->raw_data());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const int64_t size = shape[d];
    // Merge into the previous kept dim when every operand is contiguous across the two.
    bool merge = result.ndim > 0;
    for (int k = 0; k < N && merge; ++k) {
      const int64_t stride = operands[k]->strides()[d] * static_cast<int64_t>(operands[k]->itemsize());
      merge = result.strides[k][result.ndim - 1] == stride * size;
    }
    if (merge) {
      result.sizes[result.ndim - 1] *= size;
      for (int k = 0; k < N; ++k)
        result.strides[k][result.ndim - 1] =
            operands[k]->strides()[d] * static_cast<int64_t>(operands[k]->itemsize());
      continue;
    }
    KEEL_CHECK(result.ndim < kMaxLoopDims, "[elementwise] tensors with more than ", kMaxLoopDims,
               " non-mergeable dims are not supported, got shape ", shape);
    result.sizes[result.ndim] = size;
    for (int k = 0; k < N; ++k)
      result.strides[k][result.ndim] = operands[k]->strides()[d] * static_cast<int64_t>(operands[k]->itemsize());
    ++result.ndim;
  }
  if (result.ndim == 0) {  // a single element
    result.ndim = 1;
    result.sizes[0] = 1;
    for (int k = 0; k < N; ++k) result.strides[k][0] = 0;
  }
  return result;
}

// Visits elements [begin, end) in row-major order, one inner run at a time.
template <int N, typename Inner>
void run_range(const StridedPlan<N>& p, int64_t begin, int64_t end, Inner& inner) {
  const int last = p.ndim - 1;
  std::array<int64_t, kMaxLoopDims> index{};
  int64_t rest = begin;
  for (int d = last; d >= 0; --d) {
    index[d] = rest % p.sizes[d];
    rest /= p.sizes[d];
  }
  std::array<char*, N> pointers;
  std::array<int64_t, N> inner_strides;
  for (int k = 0; k < N; ++k) inner_strides[k] = p.strides[k][last];
  while (begin < end) {
    for (int k = 0; k < N; ++k) {
      char* pointer = p.base[k];
      for (int d = 0; d <= last; ++d) pointer += index[d] * p.strides[k][d];
      pointers[k] = pointer;
    }
    const int64_t count = std::min(p.sizes[last] - index[last], end - begin);
    inner(pointers.data(), inner_strides.data(), count);
    begin += count;
    index[last] += count;
    for (int d = last; d > 0 && index[d] == p.sizes[d]; --d) {
      index[d] = 0;
      ++index[d - 1];
    }
  }
}

// Number of threads worth using for `work` elements.
inline int threads_for(int64_t work, int64_t grain = kParallelGrain) {
  if (work < 2 * grain || omp_in_parallel()) return 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), work / grain));
}

template <int N, typename Inner> void run(const StridedPlan<N>& p, Inner inner) {
  if (p.numel == 0) return;
  const int threads = threads_for(p.numel);
  if (threads == 1) {
    run_range(p, 0, p.numel, inner);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t thread = omp_get_thread_num(), count = omp_get_num_threads();
    // Chunks aligned to 16 elements keep each thread's vector loops on whole cache lines.
    const int64_t chunk = ((p.numel + count - 1) / count + 15) / 16 * 16;
    const int64_t begin = std::min(p.numel, thread * chunk);
    const int64_t end = std::min(p.numel, begin + chunk);
    Inner local = inner;
    run_range(p, begin, end, local);
  }
}

template <int N, typename Inner> void for_each(const std::array<const Tensor*, N>& operands, Inner inner) {
  run(plan<N>(operands), inner);
}

}  // namespace keel::cpu
