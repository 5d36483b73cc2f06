#pragma once
// The CUDA elementwise engine: out[i] = f(in_0[i], in_1[i], ...) over tensors of one shape.
//
// N = 1 + sizeof...(In) operands (operand 0 is the output), each with its own strides (0 for
// a broadcast dim). The host plans the loop as kernels/cpu/strided_loop.h does: size-1 dims
// are dropped and neighbouring dims that are contiguous for every operand are merged, so a
// contiguous tensor of any shape becomes one row. Then one of three kernels runs:
//   contiguous, vectorized   every operand is contiguous or a broadcast scalar (stride 0) and
//                            the contiguous ones are aligned to VEC elements: each thread moves
//                            16 bytes of the widest operand per load (VEC = 16 / widest size)
//   contiguous, scalar       the same when an operand is not aligned
//   strided                  any strides: element i's byte offsets are computed from the merged
//                            sizes (innermost first) by division, in 32-bit arithmetic when
//                            numel < 2^31 and in 64-bit otherwise
// All three are grid-stride loops sized by grid_for(). Functors compute in compute_t (f32 for
// f16/bf16) themselves; the engine only moves typed values.
// Bytes per element: sum of the operands' itemsizes (broadcast operands ~0).
#include <array>
#include <cstdint>
#include <utility>

#include "keel/core/tensor.h"
#include "keel/kernels/cuda/cuda_common.h"

namespace keel::cuda::detail {

inline constexpr int kMaxLoopDims = 25;  // as kernels/cpu/strided_loop.h
inline constexpr int kElementwiseThreads = 256;

template <int N> struct LoopPlan {
  int ndim = 0;                            // >= 1; dims stored innermost first
  int64_t sizes[kMaxLoopDims];
  int64_t strides[kMaxLoopDims][N];        // bytes
  char* base[N];
  int64_t numel = 0;

  // Byte offsets of every operand for linear (row-major) element index `linear`.
  template <typename Index> __device__ __forceinline__ void offsets(Index linear, int64_t* out) const {
#pragma unroll
    for (int k = 0; k < N; ++k) out[k] = 0;
    for (int d = 0; d < ndim; ++d) {
      const Index size = static_cast<Index>(sizes[d]);
      const Index index = linear % size;
      linear /= size;
#pragma unroll
      for (int k = 0; k < N; ++k) out[k] += static_cast<int64_t>(index) * strides[d][k];
    }
  }
};

// Host: the merged loop over operands (operand 0 the output; all of its shape).
template <int N> LoopPlan<N> plan_loop(const std::array<const Tensor*, N>& operands) {
  LoopPlan<N> plan;
  const Shape& shape = operands[0]->shape();
  plan.numel = operands[0]->numel();
  for (int k = 0; k < N; ++k) plan.base[k] = static_cast<char*>(operands[k]->raw_data());
  // Collect in row-major order first (outermost first), as the CPU plan does.
  int64_t sizes[kMaxLoopDims];
  int64_t strides[kMaxLoopDims][N];
  int ndim = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    const int64_t size = shape[d];
    int64_t stride[N];
    for (int k = 0; k < N; ++k)
      stride[k] = operands[k]->strides()[d] * static_cast<int64_t>(operands[k]->itemsize());
    bool merge = ndim > 0;
    for (int k = 0; k < N && merge; ++k) merge = strides[ndim - 1][k] == stride[k] * size;
    if (merge) {
      sizes[ndim - 1] *= size;
      for (int k = 0; k < N; ++k) strides[ndim - 1][k] = stride[k];
      continue;
    }
    KEEL_CHECK(ndim < kMaxLoopDims, "[elementwise] tensors with more than ", kMaxLoopDims,
               " non-mergeable dims are not supported, got shape ", shape);
    sizes[ndim] = size;
    for (int k = 0; k < N; ++k) strides[ndim][k] = stride[k];
    ++ndim;
  }
  if (ndim == 0) {  // a single element (or an empty tensor, which never launches)
    ndim = 1;
    sizes[0] = 1;
    for (int k = 0; k < N; ++k) strides[0][k] = 0;
  }
  plan.ndim = ndim;
  for (int d = 0; d < ndim; ++d) {  // reverse: innermost first for the device
    plan.sizes[d] = sizes[ndim - 1 - d];
    for (int k = 0; k < N; ++k) plan.strides[d][k] = strides[ndim - 1 - d][k];
  }
  return plan;
}

// ---- device side ------------------------------------------------------------------------------

template <typename T, int VEC> struct alignas(sizeof(T) * VEC) Vec {
  T value[VEC];
};

// One input of the contiguous kernels: a contiguous array, or one value broadcast to all.
template <typename T> struct Input {
  const T* data;
  bool broadcast;
  __device__ __forceinline__ T load(int64_t i) const { return broadcast ? data[0] : data[i]; }
  template <int VEC> __device__ __forceinline__ Vec<T, VEC> load_vec(int64_t v) const {
    if (broadcast) {
      Vec<T, VEC> result;
      const T value = data[0];
#pragma unroll
      for (int j = 0; j < VEC; ++j) result.value[j] = value;
      return result;
    }
    return reinterpret_cast<const Vec<T, VEC>*>(data)[v];
  }
};

template <int VEC, typename F, typename Out, typename... In>
__device__ __forceinline__ void apply_vec(const F& f, Vec<Out, VEC>& result, const Vec<In, VEC>&... inputs) {
#pragma unroll
  for (int j = 0; j < VEC; ++j) result.value[j] = f(inputs.value[j]...);
}

template <int VEC, typename F, typename Out, typename... In>
__global__ void __launch_bounds__(kElementwiseThreads)
    contiguous_kernel(int64_t n, F f, Out* out, Input<In>... inputs) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t start = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t n_vec = n / VEC;
  if constexpr (VEC > 1) {
    for (int64_t v = start; v < n_vec; v += stride) {
      Vec<Out, VEC> result;
      apply_vec<VEC>(f, result, inputs.template load_vec<VEC>(v)...);
      reinterpret_cast<Vec<Out, VEC>*>(out)[v] = result;
    }
  }
  for (int64_t i = n_vec * VEC + start; i < n; i += stride) out[i] = f(inputs.load(i)...);
}

template <typename Out, typename... In, typename F, size_t... K>
__device__ __forceinline__ void apply_strided(const F& f, char* const* base, const int64_t* offsets,
                                              std::index_sequence<K...>) {
  *reinterpret_cast<Out*>(base[0] + offsets[0]) =
      f(*reinterpret_cast<const In*>(base[K + 1] + offsets[K + 1])...);
}

// Index is uint32_t when numel < 2^31 (then i + stride never wraps) and int64_t otherwise.
template <typename Index, typename F, typename Out, typename... In>
__global__ void __launch_bounds__(kElementwiseThreads)
    strided_kernel(Index n, LoopPlan<1 + sizeof...(In)> plan, F f) {
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t offsets[1 + sizeof...(In)];
    plan.offsets(i, offsets);
    apply_strided<Out, In...>(f, plan.base, offsets, std::index_sequence_for<In...>{});
  }
}

// ---- host launcher ----------------------------------------------------------------------------

template <typename T> constexpr int max_size_of() { return static_cast<int>(sizeof(T)); }
template <typename T, typename U, typename... Rest> constexpr int max_size_of() {
  return std::max(static_cast<int>(sizeof(T)), max_size_of<U, Rest...>());
}

inline bool aligned_to(const void* pointer, size_t bytes) {
  return reinterpret_cast<uintptr_t>(pointer) % bytes == 0;
}

template <typename... In, size_t... K>
bool inputs_aligned(const LoopPlan<1 + sizeof...(In)>& plan, int vec, std::index_sequence<K...>) {
  // A broadcast input (stride 0) is read one element at a time and needs no alignment.
  return ((plan.strides[0][K + 1] == 0 || aligned_to(plan.base[K + 1], sizeof(In) * vec)) && ...);
}

template <int VEC, typename F, typename Out, typename... In, size_t... K>
void launch_contiguous(const char* op, const F& f, const LoopPlan<1 + sizeof...(In)>& plan, int device,
                       std::index_sequence<K...>) {
  const int64_t n = plan.numel;
  const unsigned grid = grid_for((n + VEC - 1) / VEC, kElementwiseThreads, device);
  contiguous_kernel<VEC, F, Out, In...><<<grid, kElementwiseThreads, 0, current_stream(device)>>>(
      n, f, reinterpret_cast<Out*>(plan.base[0]),
      Input<In>{reinterpret_cast<const In*>(plan.base[K + 1]), plan.strides[0][K + 1] == 0}...);
  KEEL_CUDA_CHECK_LAUNCH(op);
}

// Runs out = f(inputs...) elementwise. Operand tensors: out first, then one per In, all of
// out's shape (broadcast inputs as stride-0 views), all on out's device.
template <typename Out, typename... In, typename F>
void elementwise(const char* op, const F& f, const std::array<const Tensor*, 1 + sizeof...(In)>& operands) {
  constexpr int N = 1 + sizeof...(In);
  const Tensor& out = *operands[0];
  if (out.numel() == 0) return;
  const int device = out.device().index;
  for (const Tensor* operand : operands) {
    KEEL_CHECK(operand->device() == out.device(), "[", op, "] expected every tensor on ", out.device().str(),
               ", got one on ", operand->device().str());
  }
  DeviceGuard guard(device, op);
  const LoopPlan<N> plan = plan_loop<N>(operands);
  using Inputs = std::index_sequence_for<In...>;

  bool contiguous = plan.ndim == 1 && plan.strides[0][0] == static_cast<int64_t>(sizeof(Out));
  if (contiguous) {
    const int64_t input_sizes[] = {static_cast<int64_t>(sizeof(In))..., 0};
    for (int k = 1; k < N; ++k)
      contiguous = contiguous && (plan.strides[0][k] == 0 || plan.strides[0][k] == input_sizes[k - 1]);
  }
  if (contiguous) {
    constexpr int kVec = std::max(1, 16 / max_size_of<Out, In...>());
    if constexpr (kVec > 1) {
      if (aligned_to(plan.base[0], sizeof(Out) * kVec) && inputs_aligned<In...>(plan, kVec, Inputs{})) {
        launch_contiguous<kVec, F, Out, In...>(op, f, plan, device, Inputs{});
        return;
      }
    }
    launch_contiguous<1, F, Out, In...>(op, f, plan, device, Inputs{});
    return;
  }
  const cudaStream_t stream = current_stream(device);
  if (plan.numel < (int64_t{1} << 31)) {
    const unsigned grid = grid_for(plan.numel, kElementwiseThreads, device);
    strided_kernel<uint32_t, F, Out, In...>
        <<<grid, kElementwiseThreads, 0, stream>>>(static_cast<uint32_t>(plan.numel), plan, f);
  } else {
    const unsigned grid = grid_for(plan.numel, kElementwiseThreads, device);
    strided_kernel<int64_t, F, Out, In...><<<grid, kElementwiseThreads, 0, stream>>>(plan.numel, plan, f);
  }
  KEEL_CUDA_CHECK_LAUNCH(op);
}

}  // namespace keel::cuda::detail
