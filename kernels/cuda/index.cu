// CUDA indexing kernels: gather, scatter (assign / add) and index_select, with the contracts of
// the cpu:: functions of the same names (kernels/cpu/index.cpp).
//
// Positions p run over the index tensor's shape S (one rank >= 1 for all tensors);
// p[dim -> v] is p with its coordinate `dim` replaced by v.
//   gather:        out[p] = x[p[dim -> index[p]]]                     a thread per position
//   scatter:       self[p[dim -> index[p]]] = source[p]               a thread per line
//   scatter_add:   self[p[dim -> index[p]]] += source[p]              (f16/bf16 added in f32)
//   index_select:  gather with the 1-D index broadcast along every dim but `dim`
// Every index is checked against [0, size) first (an amin/amax reduction of the index read back
// to the host), so a bad index throws keel::Error and leaves the output untouched.
// Scatter gives each line (all positions that differ only in coordinate `dim`) to one thread,
// which walks it in order: lines write disjoint elements, so there are no races, later
// positions win, and scatter_add adds in the CPU's order (bit-identical results, no atomics).
// Bytes per call: numel(S) * (2 * itemsize + index itemsize).
#include <limits>

#include "keel/kernels/convert.h"
#include "keel/kernels/cuda/cuda_kernels.h"
#include "keel/kernels/cuda/elementwise.cuh"
#include "keel/kernels/dispatch.h"

namespace keel::cuda {

namespace {

// One value of a 1-element device tensor of an index dtype, on the host.
int64_t read_index_value(const Tensor& t) {
  int64_t value = 0;
  dispatch_index(t.dtype(), "index", [&]<typename I>() {
    I host = 0;
    memcpy_device_to_host(&host, t.raw_data(), sizeof(I), t.device().index);
    value = static_cast<int64_t>(host);
  });
  return value;
}

// Throws unless every value of `index` lies in [0, size).
void check_bounds(const char* op, const Tensor& index, int64_t dim, int64_t size) {
  KEEL_CHECK(index.dtype() == DType::i64 || index.dtype() == DType::i32, "[", op,
             "] index must be int64 or int32, got ", dtype_name(index.dtype()));
  if (index.numel() == 0) return;
  const Shape ones(static_cast<size_t>(index.dim()), 1);
  std::vector<int64_t> all_dims;
  for (int64_t d = 0; d < index.dim(); ++d) all_dims.push_back(d);
  const Tensor lowest = empty(ones, index.options()), highest = empty(ones, index.options());
  reduce(ReduceOp::amin, lowest, index, all_dims);
  reduce(ReduceOp::amax, highest, index, all_dims);
  const int64_t low = read_index_value(lowest), high = read_index_value(highest);
  if (low < 0 || high >= size) {
    fail("[", op, "] index ", low < 0 ? low : high, " is out of bounds for dim ", dim, " with size ", size);
  }
}

void check_ranks(std::initializer_list<const Tensor*> tensors, int64_t dim) {
  const Tensor& first = **tensors.begin();
  const int64_t ndim = first.dim();
  KEEL_ASSERT(ndim >= 1 && dim >= 0 && dim < ndim);
  for (const Tensor* t : tensors) {
    KEEL_ASSERT(t->dim() == ndim);
    KEEL_CHECK(t->device() == first.device(), "[index] expected tensors on one CUDA device, got ",
               first.device().str(), " and ", t->device().str());
  }
}

// ---- gather ----------------------------------------------------------------------------------

// Operands of plan: out, index, x with its stride at dim set to 0; x_dim_stride in bytes.
template <typename Index, typename T, typename I>
__global__ void __launch_bounds__(detail::kElementwiseThreads)
    gather_kernel(Index n, detail::LoopPlan<3> plan, int64_t x_dim_stride) {
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    int64_t offsets[3];
    plan.offsets(i, offsets);
    const int64_t position = static_cast<int64_t>(*reinterpret_cast<const I*>(plan.base[1] + offsets[1]));
    *reinterpret_cast<T*>(plan.base[0] + offsets[0]) =
        *reinterpret_cast<const T*>(plan.base[2] + offsets[2] + position * x_dim_stride);
  }
}

// Gather without bounds checks: out and index have shape S, x has S's rank.
void gather_unchecked(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  if (out.numel() == 0) return;
  const int device = out.device().index;
  detail::DeviceGuard guard(device, "gather");
  Shape x_strides = x.strides();
  const int64_t x_dim_stride = x_strides[dim] * static_cast<int64_t>(x.itemsize());
  x_strides[dim] = 0;  // x's coordinate at dim comes from the index, not from p
  const Tensor x_view = x.as_strided(out.shape(), x_strides, x.offset());
  const detail::LoopPlan<3> plan = detail::plan_loop<3>({&out, &index, &x_view});
  const unsigned grid = detail::grid_for(plan.numel, detail::kElementwiseThreads, device);
  const cudaStream_t stream = detail::current_stream(device);
  dispatch_all(x.dtype(), "gather", [&]<typename T>() {
    dispatch_index(index.dtype(), "gather", [&]<typename I>() {
      if (plan.numel < (int64_t{1} << 31)) {
        gather_kernel<uint32_t, T, I><<<grid, detail::kElementwiseThreads, 0, stream>>>(
            static_cast<uint32_t>(plan.numel), plan, x_dim_stride);
      } else {
        gather_kernel<int64_t, T, I><<<grid, detail::kElementwiseThreads, 0, stream>>>(plan.numel, plan, x_dim_stride);
      }
      KEEL_CUDA_CHECK_LAUNCH("gather");
    });
  });
}

// ---- scatter ---------------------------------------------------------------------------------

// Operands of plan (over the line coordinates): self, index, source. Each thread walks one
// line of `count` positions; strides in bytes.
template <bool accumulate, typename T, typename I>
__global__ void __launch_bounds__(detail::kElementwiseThreads)
    scatter_kernel(int64_t lines, detail::LoopPlan<3> plan, int64_t count, int64_t self_dim_stride,
                   int64_t index_step, int64_t source_step) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t line = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; line < lines; line += stride) {
    int64_t offsets[3];
    plan.offsets(line, offsets);
    char* self_line = plan.base[0] + offsets[0];
    const char* index_line = plan.base[1] + offsets[1];
    const char* source_line = plan.base[2] + offsets[2];
    for (int64_t k = 0; k < count; ++k) {
      const int64_t position = static_cast<int64_t>(*reinterpret_cast<const I*>(index_line + k * index_step));
      T& target = *reinterpret_cast<T*>(self_line + position * self_dim_stride);
      const T value = *reinterpret_cast<const T*>(source_line + k * source_step);
      if constexpr (!accumulate) {
        target = value;
      } else if constexpr (std::is_same_v<T, bool>) {
        target = target || value;
      } else {
        // In compute_t (f32 for f16/bf16); signed integers wrap (math::binary adds them as
        // unsigned), where a plain signed + would overflow undefinedly.
        using C = compute_t<T>;
        target = convert<T, C>(math::binary<BinaryOp::add>(static_cast<C>(target), static_cast<C>(value)));
      }
    }
  }
}

// The first ndim - 1 dims of t as a view (its lines' starting points).
Tensor line_starts(const Tensor& t, const Shape& line_shape) {
  const Shape strides(t.strides().begin(), t.strides().end() - 1);
  return t.as_strided(line_shape, strides, t.offset());
}

}  // namespace

void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  check_ranks({&out, &x, &index}, dim);
  KEEL_ASSERT(out.shape() == index.shape() && out.dtype() == x.dtype());
  check_bounds("gather", index, dim, x.shape()[dim]);
  gather_unchecked(out, x, dim, index);
}

void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  KEEL_ASSERT(x.dim() >= 1 && out.dim() == x.dim() && index.dim() == 1 && out.dtype() == x.dtype());
  KEEL_ASSERT(dim >= 0 && dim < x.dim() && out.shape()[dim] == index.numel());
  KEEL_CHECK(out.device() == x.device() && index.device() == x.device(),
             "[index_select] expected tensors on one CUDA device, got ", x.device().str(), " and ",
             index.device().str());
  check_bounds("index_select", index, dim, x.shape()[dim]);
  // The 1-D index as a tensor of out's shape that varies along dim only.
  Shape index_strides(static_cast<size_t>(out.dim()), 0);
  index_strides[dim] = index.strides()[0];
  const Tensor broadcast_index = index.as_strided(out.shape(), index_strides, index.offset());
  gather_unchecked(out, x, dim, broadcast_index);
}

void scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source, bool accumulate) {
  const char* op = accumulate ? "scatter_add" : "scatter";
  check_ranks({&self, &index, &source}, dim);
  KEEL_ASSERT(self.dtype() == source.dtype());
  check_bounds(op, index, dim, self.shape()[dim]);
  if (index.numel() == 0) return;
  const int device = self.device().index;
  detail::DeviceGuard guard(device, op);
  // Move dim to the end: a line then holds every position that can write the same element.
  std::vector<int64_t> order;
  for (int64_t d = 0; d < self.dim(); ++d)
    if (d != dim) order.push_back(d);
  order.push_back(dim);
  const Tensor self_p = self.permute(order), index_p = index.permute(order), source_p = source.permute(order);
  const Shape& shape = index_p.shape();
  const Shape line_shape(shape.begin(), shape.end() - 1);
  const int64_t count = shape.back();
  const int64_t lines = shape_numel(line_shape);
  const Tensor self_lines = line_starts(self_p, line_shape);
  const Tensor index_lines = line_starts(index_p, line_shape);
  const Tensor source_lines = line_starts(source_p, line_shape);
  const detail::LoopPlan<3> plan = detail::plan_loop<3>({&self_lines, &index_lines, &source_lines});
  const int64_t self_dim_stride = self_p.strides().back() * static_cast<int64_t>(self.itemsize());
  const int64_t index_step = index_p.strides().back() * static_cast<int64_t>(index.itemsize());
  const int64_t source_step = source_p.strides().back() * static_cast<int64_t>(source.itemsize());
  const unsigned grid = detail::grid_for(lines, detail::kElementwiseThreads, device);
  const cudaStream_t stream = detail::current_stream(device);
  dispatch_all(self.dtype(), op, [&]<typename T>() {
    dispatch_index(index.dtype(), op, [&]<typename I>() {
      if (accumulate) {
        scatter_kernel<true, T, I><<<grid, detail::kElementwiseThreads, 0, stream>>>(
            lines, plan, count, self_dim_stride, index_step, source_step);
      } else {
        scatter_kernel<false, T, I><<<grid, detail::kElementwiseThreads, 0, stream>>>(
            lines, plan, count, self_dim_stride, index_step, source_step);
      }
      KEEL_CUDA_CHECK_LAUNCH(op);
    });
  });
}

}  // namespace keel::cuda
