// CUDA reductions, same contracts as cpu::reduce and cpu::arg_reduce.
//
//   reduce:      out[k] = op over r of load(x[k, r])      op: sum prod amax amin all any
//   arg_reduce:  values[k], indices[k] = extreme of x[k, :] along dim and its first index
//   k: kept index (out has x's rank, size 1 in the reduced dims), r: reduced index.
//
// Layout: x is viewed with the kept dims first and the reduced dims last (a permutation), and
// copied to a contiguous [rows, cols] matrix when that view is not already contiguous (the copy
// also converts x to out's dtype when the kernel does not read that pair directly). Then a
// group of G threads reduces each row:
//   G = 1     cols < 8: a thread per row
//   G = 32    cols up to 4096, or many rows: a warp per row, shuffles
//   G = 512   long rows: a block per row, shuffles then shared memory; when there are too few
//             rows to fill the device, each row is split into chunks reduced into a partial
//             buffer (in the accumulator dtype) that a second pass reduces
// Accumulators: f32 for f16/bf16/f32 results, f64 for f64, the result type for integers (sums
// and products wrap, as the CPU's int64 accumulation converted back does), bool for all/any.
// amax/amin propagate NaN; arg_reduce: the first extreme wins, and the first NaN beats all.
// Bytes per call: numel(x) * itemsize(x) (+ the same again when a copy is needed) +
// numel(out) * itemsize(out). Reference: kernels/reference reduce(); tests compare with the CPU.
#include <limits>

#include "keel/kernels/convert.h"
#include "keel/kernels/cuda/cuda_common.h"
#include "keel/kernels/cuda/cuda_kernels.h"
#include "keel/kernels/dispatch.h"

namespace keel::cuda {

namespace {

// ---- accumulation rules ----------------------------------------------------------------------

template <ReduceOp op, typename Out> struct AccOf {
  using type = compute_t<Out>;
};
template <typename Out> struct AccOf<ReduceOp::all, Out> { using type = bool; };
template <typename Out> struct AccOf<ReduceOp::any, Out> { using type = bool; };
template <ReduceOp op, typename Out> using acc_t = typename AccOf<op, Out>::type;

template <ReduceOp op, typename A> __device__ __forceinline__ A reduce_combine(A a, A b) {
  if constexpr (op == ReduceOp::sum) return math::binary<BinaryOp::add>(a, b);
  else if constexpr (op == ReduceOp::prod) return math::binary<BinaryOp::mul>(a, b);
  else if constexpr (op == ReduceOp::amax) return math::binary<BinaryOp::maximum>(a, b);
  else if constexpr (op == ReduceOp::amin) return math::binary<BinaryOp::minimum>(a, b);
  else if constexpr (op == ReduceOp::all) return a && b;
  else return a || b;
}

// One element of x read as op's accumulator for result type Out ("x converted while read").
template <ReduceOp op, typename Out, typename In> struct ReduceLoad {
  __device__ __forceinline__ acc_t<op, Out> operator()(In value) const {
    if constexpr (op == ReduceOp::all || op == ReduceOp::any) return convert<bool, In>(value);
    else return static_cast<acc_t<op, Out>>(convert<Out, In>(value));
  }
};
// The second pass reads partial results that are already accumulators.
template <typename A> struct IdentityLoad {
  __device__ __forceinline__ A operator()(A value) const { return value; }
};

// __shfl_xor_sync for every accumulator type (it has no overloads below 32 bits).
template <typename T> __device__ __forceinline__ T shuffle_xor(T value, int lane_mask) {
  constexpr unsigned kFull = 0xffffffffu;
  if constexpr (std::is_same_v<T, bool>) {
    return __shfl_xor_sync(kFull, static_cast<int>(value), lane_mask) != 0;
  } else if constexpr (std::is_integral_v<T> && sizeof(T) < 4) {
    return static_cast<T>(__shfl_xor_sync(kFull, static_cast<int>(value), lane_mask));
  } else if constexpr (std::is_integral_v<T> && sizeof(T) == 8) {
    return static_cast<T>(__shfl_xor_sync(kFull, static_cast<long long>(value), lane_mask));
  } else {
    return __shfl_xor_sync(kFull, value, lane_mask);
  }
}

template <ReduceOp op, typename A> __device__ __forceinline__ A warp_reduce(A value) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) value = reduce_combine<op>(value, shuffle_xor(value, offset));
  return value;
}

// ---- the row kernel --------------------------------------------------------------------------

// Reduces `segments` runs of x: segment s covers row s / splits, columns
// [(s % splits) * chunk, min(cols, ... + chunk)), and writes out[s]. A group of G threads
// (1, 32 or BLOCK) handles one segment; BLOCK / G segments per block, grid-stride beyond.
template <int G, int BLOCK, ReduceOp op, typename A, typename Src, typename Dst, typename Load>
__global__ void __launch_bounds__(BLOCK)
    reduce_kernel(const Src* x, Dst* out, int64_t segments, int64_t cols, int64_t splits, int64_t chunk, Load load) {
  static_assert(G == 1 || G == 32 || G == BLOCK, "a group is a thread, a warp or the block");
  constexpr int kGroups = BLOCK / G;
  __shared__ A warp_partials[BLOCK / 32];
  const int group = static_cast<int>(threadIdx.x) / G;
  const int lane = static_cast<int>(threadIdx.x) % G;
  // The loop bound is uniform across each group (and across the block when G == BLOCK), so
  // every lane reaches the shuffles and barriers together.
  for (int64_t segment = static_cast<int64_t>(blockIdx.x) * kGroups + group; segment < segments;
       segment += static_cast<int64_t>(gridDim.x) * kGroups) {
    const int64_t row = segment / splits;
    const int64_t begin = (segment % splits) * chunk;
    const int64_t end = begin + chunk < cols ? begin + chunk : cols;
    const Src* data = x + row * cols;
    // Four independent accumulators keep four loads in flight per thread.
    A acc0 = reduce_identity<op, A>(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t c = begin + lane;
    for (; c + 3 * G < end; c += 4 * G) {
      acc0 = reduce_combine<op>(acc0, load(data[c]));
      acc1 = reduce_combine<op>(acc1, load(data[c + G]));
      acc2 = reduce_combine<op>(acc2, load(data[c + 2 * G]));
      acc3 = reduce_combine<op>(acc3, load(data[c + 3 * G]));
    }
    for (; c < end; c += G) acc0 = reduce_combine<op>(acc0, load(data[c]));
    A acc = reduce_combine<op>(reduce_combine<op>(acc0, acc1), reduce_combine<op>(acc2, acc3));
    if constexpr (G >= 32) acc = warp_reduce<op>(acc);
    if constexpr (G > 32) {
      const int warp = static_cast<int>(threadIdx.x) / 32, warp_lane = static_cast<int>(threadIdx.x) % 32;
      if (warp_lane == 0) warp_partials[warp] = acc;
      __syncthreads();
      if (warp == 0) {
        acc = warp_lane < BLOCK / 32 ? warp_partials[warp_lane] : reduce_identity<op, A>();
        acc = warp_reduce<op>(acc);
      }
      __syncthreads();  // warp_partials is reused by the next segment
    }
    if (lane == 0) out[segment] = convert<Dst, A>(acc);
  }
}

constexpr int kWarpBlock = 256;  // G = 1 and G = 32 launches
constexpr int kRowBlock = 512;   // G = BLOCK launches

template <ReduceOp op, typename In, typename Out>
void reduce_rows(const In* x, Out* out, int64_t rows, int64_t cols, int device) {
  using A = acc_t<op, Out>;
  const cudaStream_t stream = detail::current_stream(device);
  const ReduceLoad<op, Out, In> load;
  const int64_t sms = detail::multiprocessor_count(device);
  if (cols < 8) {
    const unsigned grid = detail::grid_for(rows, kWarpBlock, device);
    reduce_kernel<1, kWarpBlock, op, A><<<grid, kWarpBlock, 0, stream>>>(x, out, rows, cols, 1, cols, load);
  } else if (cols <= 4096 || rows >= sms * 8) {
    const unsigned grid = detail::grid_for(rows, kWarpBlock / 32, device, 64);
    reduce_kernel<32, kWarpBlock, op, A><<<grid, kWarpBlock, 0, stream>>>(x, out, rows, cols, 1, cols, load);
  } else {
    // Few long rows: split them so that about 4 blocks per SM have work, each chunk >= 16K elements.
    const int64_t splits = std::max<int64_t>(1, std::min((sms * 4 + rows - 1) / rows, cols / 16384));
    if (splits == 1) {
      const unsigned grid = detail::grid_for(rows, 1, device, 4);
      reduce_kernel<kRowBlock, kRowBlock, op, A><<<grid, kRowBlock, 0, stream>>>(x, out, rows, cols, 1, cols, load);
    } else {
      const int64_t chunk = (cols + splits - 1) / splits;
      const Tensor partials = empty({rows * splits}, {dtype_of_v<A>, Device::cuda(device)});
      A* partial_data = static_cast<A*>(partials.raw_data());
      const unsigned grid = detail::grid_for(rows * splits, 1, device, 4);
      reduce_kernel<kRowBlock, kRowBlock, op, A>
          <<<grid, kRowBlock, 0, stream>>>(x, partial_data, rows * splits, cols, splits, chunk, load);
      KEEL_CUDA_CHECK_LAUNCH("reduce");
      const unsigned grid2 = detail::grid_for(rows, kWarpBlock / 32, device, 64);
      reduce_kernel<32, kWarpBlock, op, A><<<grid2, kWarpBlock, 0, stream>>>(
          partial_data, out, rows, splits, 1, splits, IdentityLoad<A>{});
      // `partials` goes back to the stream's pool on return; the stream orders its reuse after
      // this kernel.
    }
  }
  KEEL_CUDA_CHECK_LAUNCH("reduce");
}

bool reads_directly(ReduceOp op, DType in, DType out) {
  return in == out || ((op == ReduceOp::all || op == ReduceOp::any) && out == DType::bool_);
}

template <ReduceOp op> void reduce_typed(const Tensor& out, const Tensor& x, int64_t rows, int64_t cols) {
  const int device = out.device().index;
  if (x.dtype() == out.dtype()) {
    dispatch_all(x.dtype(), "reduce", [&]<typename T>() {
      reduce_rows<op, T, T>(static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), rows, cols, device);
    });
  } else {
    KEEL_ASSERT(reads_directly(op, x.dtype(), out.dtype()));
    if constexpr (op == ReduceOp::all || op == ReduceOp::any) {
      dispatch_all(x.dtype(), "reduce", [&]<typename In>() {
        reduce_rows<op, In, bool>(static_cast<const In*>(x.raw_data()), static_cast<bool*>(out.raw_data()), rows,
                                  cols, device);
      });
    }
  }
}

// x with `last` dims moved to the end (order kept), as a contiguous tensor of dtype `dtype`.
Tensor rows_last(const Tensor& x, const std::vector<bool>& last, DType dtype) {
  std::vector<int64_t> permutation;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!last[d]) permutation.push_back(d);
  for (int64_t d = 0; d < x.dim(); ++d)
    if (last[d]) permutation.push_back(d);
  const Tensor permuted = x.permute(permutation);
  if (permuted.is_contiguous() && dtype == x.dtype()) return permuted;
  Tensor packed = empty(permuted.shape(), {dtype, x.device()});
  copy(packed, permuted);
  return packed;
}

// ---- arg_reduce ------------------------------------------------------------------------------

// Whether (value, index) beats (best, best_index): NaN first, then the extreme, then the
// lower index. index < 0 marks an empty slot (a lane that saw no element).
template <bool is_max, typename C>
__device__ __forceinline__ bool arg_better(C value, int64_t index, C best, int64_t best_index) {
  if (index < 0) return false;
  if (best_index < 0) return true;
  const bool value_nan = math::is_nan(value), best_nan = math::is_nan(best);
  if (value_nan || best_nan) return value_nan && (!best_nan || index < best_index);
  if (is_max ? value > best : value < best) return true;
  return value == best && index < best_index;
}

template <bool is_max, typename C> __device__ __forceinline__ void arg_warp_reduce(C& best, int64_t& best_index) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    const C other = shuffle_xor(best, offset);
    const int64_t other_index = shuffle_xor(best_index, offset);
    if (arg_better<is_max>(other, other_index, best, best_index)) {
      best = other;
      best_index = other_index;
    }
  }
}

template <int G, int BLOCK, bool is_max, typename T>
__global__ void __launch_bounds__(BLOCK)
    arg_reduce_kernel(const T* x, T* values, int64_t* indices, int64_t rows, int64_t cols) {
  static_assert(G == 1 || G == 32 || G == BLOCK, "a group is a thread, a warp or the block");
  using C = compute_t<T>;
  constexpr int kGroups = BLOCK / G;
  __shared__ C warp_best[BLOCK / 32];
  __shared__ int64_t warp_best_index[BLOCK / 32];
  const int group = static_cast<int>(threadIdx.x) / G;
  const int lane = static_cast<int>(threadIdx.x) % G;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * kGroups + group; row < rows;
       row += static_cast<int64_t>(gridDim.x) * kGroups) {
    const T* data = x + row * cols;
    C best = C(0);
    int64_t best_index = -1;
    // Each lane visits its columns in increasing order, so on ties it keeps the first.
    for (int64_t c = lane; c < cols; c += G) {
      const C value = static_cast<C>(data[c]);
      if (arg_better<is_max>(value, c, best, best_index)) {
        best = value;
        best_index = c;
      }
    }
    if constexpr (G >= 32) arg_warp_reduce<is_max>(best, best_index);
    if constexpr (G > 32) {
      const int warp = static_cast<int>(threadIdx.x) / 32, warp_lane = static_cast<int>(threadIdx.x) % 32;
      if (warp_lane == 0) {
        warp_best[warp] = best;
        warp_best_index[warp] = best_index;
      }
      __syncthreads();
      if (warp == 0) {
        best = warp_lane < BLOCK / 32 ? warp_best[warp_lane] : C(0);
        best_index = warp_lane < BLOCK / 32 ? warp_best_index[warp_lane] : -1;
        arg_warp_reduce<is_max>(best, best_index);
      }
      __syncthreads();
    }
    if (lane == 0) {
      values[row] = static_cast<T>(best);
      indices[row] = best_index;
    }
  }
}

template <bool is_max, typename T>
void arg_reduce_rows(const T* x, T* values, int64_t* indices, int64_t rows, int64_t cols, int device) {
  const cudaStream_t stream = detail::current_stream(device);
  const int64_t sms = detail::multiprocessor_count(device);
  if (cols < 8) {
    const unsigned grid = detail::grid_for(rows, kWarpBlock, device);
    arg_reduce_kernel<1, kWarpBlock, is_max><<<grid, kWarpBlock, 0, stream>>>(x, values, indices, rows, cols);
  } else if (cols <= 4096 || rows >= sms * 8) {
    const unsigned grid = detail::grid_for(rows, kWarpBlock / 32, device, 64);
    arg_reduce_kernel<32, kWarpBlock, is_max><<<grid, kWarpBlock, 0, stream>>>(x, values, indices, rows, cols);
  } else {
    const unsigned grid = detail::grid_for(rows, 1, device, 4);
    arg_reduce_kernel<kRowBlock, kRowBlock, is_max><<<grid, kRowBlock, 0, stream>>>(x, values, indices, rows, cols);
  }
  KEEL_CUDA_CHECK_LAUNCH("arg_reduce");
}

}  // namespace

void reduce(ReduceOp op, const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  KEEL_ASSERT(out.dim() == x.dim());
  KEEL_CHECK(out.device() == x.device(), "[reduce] expected tensors on one CUDA device, got ", out.device().str(),
             " and ", x.device().str());
  if (out.numel() == 0) return;
  const int64_t ndim = x.dim();
  // Reduced dims: the listed ones; out has size 1 there. A size-1 dim of out that is not
  // listed holds a size-1 dim of x, so reducing it too changes nothing.
  std::vector<bool> reduced(static_cast<size_t>(ndim), false);
  for (int64_t d : dims) {
    KEEL_ASSERT(d >= 0 && d < std::max<int64_t>(ndim, 1));
    if (ndim > 0) reduced[d] = true;
  }
  for (int64_t d = 0; d < ndim; ++d) {
    KEEL_ASSERT(out.shape()[d] == 1 || (!reduced[d] && out.shape()[d] == x.shape()[d]));
    if (out.shape()[d] == 1) reduced[d] = true;
  }
  const int device = out.device().index;
  detail::DeviceGuard guard(device, "reduce");
  const DType read_dtype = reads_directly(op, x.dtype(), out.dtype()) ? x.dtype() : out.dtype();
  const Tensor matrix = rows_last(x, reduced, read_dtype);
  const Tensor target = out.is_contiguous() ? out : empty(out.shape(), out.options());
  const int64_t rows = out.numel();
  const int64_t cols = matrix.numel() / rows;
  switch (op) {
    case ReduceOp::sum: reduce_typed<ReduceOp::sum>(target, matrix, rows, cols); break;
    case ReduceOp::prod: reduce_typed<ReduceOp::prod>(target, matrix, rows, cols); break;
    case ReduceOp::amax: reduce_typed<ReduceOp::amax>(target, matrix, rows, cols); break;
    case ReduceOp::amin: reduce_typed<ReduceOp::amin>(target, matrix, rows, cols); break;
    case ReduceOp::all: reduce_typed<ReduceOp::all>(target, matrix, rows, cols); break;
    case ReduceOp::any: reduce_typed<ReduceOp::any>(target, matrix, rows, cols); break;
  }
  if (!target.is_same(out)) copy(out, target);
}

void arg_reduce(bool is_max, const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim) {
  KEEL_CHECK(values.dtype() == x.dtype(), "[arg_reduce] values must have x's dtype");
  KEEL_ASSERT(indices.dtype() == DType::i64);
  KEEL_CHECK(values.device() == x.device() && indices.device() == x.device(),
             "[arg_reduce] expected tensors on one CUDA device, got ", values.device().str(), ", ",
             indices.device().str(), " and ", x.device().str());
  if (x.numel() == 0) return;
  const int64_t ndim = x.dim();
  KEEL_ASSERT(dim >= 0 && dim < std::max<int64_t>(ndim, 1));
  std::vector<bool> last(static_cast<size_t>(ndim), false);
  if (ndim > 0) last[dim] = true;
  const int device = x.device().index;
  detail::DeviceGuard guard(device, "arg_reduce");
  const Tensor matrix = rows_last(x, last, x.dtype());
  const Tensor values_target = values.is_contiguous() ? values : empty(values.shape(), values.options());
  const Tensor indices_target = indices.is_contiguous() ? indices : empty(indices.shape(), indices.options());
  const int64_t rows = values.numel();
  KEEL_ASSERT(rows > 0 && indices.numel() == rows);
  const int64_t cols = matrix.numel() / rows;
  dispatch_all(x.dtype(), "arg_reduce", [&]<typename T>() {
    const T* x_data = static_cast<const T*>(matrix.raw_data());
    T* value_data = static_cast<T*>(values_target.raw_data());
    int64_t* index_data = static_cast<int64_t*>(indices_target.raw_data());
    if (is_max) arg_reduce_rows<true, T>(x_data, value_data, index_data, rows, cols, device);
    else arg_reduce_rows<false, T>(x_data, value_data, index_data, rows, cols, device);
  });
  if (!values_target.is_same(values)) copy(values, values_target);
  if (!indices_target.is_same(indices)) copy(indices, indices_target);
}

}  // namespace keel::cuda
