// Indexing CPU kernels: gather, scatter (assign / add) and index_select, over any strides.
//
// Positions p run over the index tensor's shape S (all tensors have the same rank >= 1; ops
// turn 0-D tensors into [1]); p[dim -> v] is p with its coordinate `dim` replaced by v.
//   gather:        out[p] = x[p[dim -> index[p]]]                     out: S, x's dtype
//   scatter:       self[p[dim -> index[p]]] = source[p]               (source covers S)
//   scatter_add:   self[p[dim -> index[p]]] += source[p]              (f16/bf16 added in f32)
//   index_select:  out[..., j, ...] = x[..., index[j], ...]            = gather with index
//                  broadcast (stride 0) to out's shape along every dim but `dim`
// Bytes per call: numel(S) * (2 * itemsize + index itemsize); no FLOPs but scatter_add's adds.
//
// Every index is checked against [0, size) before anything is written, so a bad index throws
// keel::Error and leaves the output untouched. The work is split into lines along the last
// dim; OpenMP threads take whole lines. Scatter first permutes `dim` to the last place, so one
// line holds every position that can write the same element: lines never race, and within a
// line later positions win (deterministic, unlike PyTorch's parallel scatter).
// Reference: kernels/reference (gather, scatter, index_select).
#include <algorithm>
#include <limits>

#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/cpu/strided_loop.h"
#include "keel/kernels/dispatch.h"

namespace keel::cpu {

namespace {

// Throws unless every value of `index` lies in [0, size).
void check_bounds(const char* op, const Tensor& index, int64_t dim, int64_t size) {
  if (index.numel() == 0) return;
  int64_t lowest = std::numeric_limits<int64_t>::max(), highest = std::numeric_limits<int64_t>::min();
  dispatch_index(index.dtype(), op, [&]<typename I>() {
    auto p = plan<1>({&index});
    auto inner = [&](char* const* pointers, const int64_t* strides, int64_t count) {
      const char* pointer = pointers[0];
      for (int64_t i = 0; i < count; ++i, pointer += strides[0]) {
        const int64_t value = *reinterpret_cast<const I*>(pointer);
        lowest = std::min(lowest, value);
        highest = std::max(highest, value);
      }
    };
    run_range(p, 0, p.numel, inner);
  });
  if (lowest < 0 || highest >= size) {
    fail("[", op, "] index ", lowest < 0 ? lowest : highest, " is out of bounds for dim ", dim,
         " with size ", size);
  }
}

// Calls line(offsets) for every position of shape[0 .. ndim-1) (the last dim fixed at 0), where
// offsets[k] = sum_d coordinate_d * strides[k][d]. Lines are split across threads.
template <int N, typename Line>
void for_each_line(const Shape& shape, const std::array<Shape, N>& strides, Line line) {
  const int64_t total = shape_numel(shape);
  if (total == 0) return;
  const int64_t ndim = static_cast<int64_t>(shape.size());
  const int64_t lines = total / shape.back();
  const int threads = threads_for(total);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t l = 0; l < lines; ++l) {
    std::array<int64_t, N> offsets{};
    int64_t rest = l;
    for (int64_t d = ndim - 2; d >= 0; --d) {
      const int64_t coordinate = rest % shape[d];
      rest /= shape[d];
      for (int k = 0; k < N; ++k) offsets[k] += coordinate * strides[k][d];
    }
    line(offsets);
  }
}

// Gather without bounds checks: out and index have shape S, x has S's rank.
void gather_unchecked(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  const Shape& shape = out.shape();
  Shape x_strides = x.strides();
  const int64_t x_dim_stride = x_strides[dim];
  x_strides[dim] = 0;  // x's coordinate at dim comes from the index, not from p
  const int64_t count = shape.back();
  const int64_t out_step = out.strides().back(), index_step = index.strides().back();
  const int64_t x_step = x_strides.back();
  dispatch_all(x.dtype(), "gather", [&]<typename T>() {
    dispatch_index(index.dtype(), "gather", [&]<typename I>() {
      T* out_data = static_cast<T*>(out.raw_data());
      const T* x_data = static_cast<const T*>(x.raw_data());
      const I* index_data = static_cast<const I*>(index.raw_data());
      for_each_line<3>(shape, {out.strides(), index.strides(), x_strides}, [&](const std::array<int64_t, 3>& o) {
        T* out_line = out_data + o[0];
        const I* index_line = index_data + o[1];
        const T* x_line = x_data + o[2];
        for (int64_t k = 0; k < count; ++k) {
          const int64_t i = static_cast<int64_t>(index_line[k * index_step]);
          out_line[k * out_step] = x_line[k * x_step + i * x_dim_stride];
        }
      });
    });
  });
}

void check_ranks(const char* op, std::initializer_list<const Tensor*> tensors, int64_t dim) {
  const int64_t ndim = (*tensors.begin())->dim();
  KEEL_ASSERT(ndim >= 1 && dim >= 0 && dim < ndim);
  for (const Tensor* t : tensors) KEEL_ASSERT(t->dim() == ndim);
}

}  // namespace

void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  check_ranks("gather", {&out, &x, &index}, dim);
  KEEL_ASSERT(out.shape() == index.shape() && out.dtype() == x.dtype());
  check_bounds("gather", index, dim, x.shape()[dim]);
  gather_unchecked(out, x, dim, index);
}

void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index) {
  KEEL_ASSERT(x.dim() >= 1 && out.dim() == x.dim() && index.dim() == 1 && out.dtype() == x.dtype());
  KEEL_ASSERT(out.shape()[dim] == index.numel());
  check_bounds("index_select", index, dim, x.shape()[dim]);
  // The 1-D index as a tensor of out's shape that varies along dim only.
  Shape index_strides(out.dim(), 0);
  index_strides[dim] = index.strides()[0];
  const Tensor broadcast_index = index.as_strided(out.shape(), index_strides, index.offset());
  gather_unchecked(out, x, dim, broadcast_index);
}

void scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source, bool accumulate) {
  const char* op = accumulate ? "scatter_add" : "scatter";
  check_ranks(op, {&self, &index, &source}, dim);
  KEEL_ASSERT(self.dtype() == source.dtype());
  check_bounds(op, index, dim, self.shape()[dim]);
  if (index.numel() == 0) return;
  // Move dim to the end so that every line holds all writers of the elements it touches.
  std::vector<int64_t> order;
  for (int64_t d = 0; d < self.dim(); ++d)
    if (d != dim) order.push_back(d);
  order.push_back(dim);
  const Tensor self_p = self.permute(order), index_p = index.permute(order), source_p = source.permute(order);
  const int64_t last = self.dim() - 1;
  // Positions run over index's shape; source is read at the same coordinates.
  const Shape& shape = index_p.shape();
  Shape self_strides = self_p.strides();
  const int64_t self_dim_stride = self_strides[last];
  self_strides[last] = 0;
  const int64_t count = shape.back();
  const int64_t index_step = index_p.strides().back(), source_step = source_p.strides().back();
  dispatch_all(self.dtype(), op, [&]<typename T>() {
    dispatch_index(index.dtype(), op, [&]<typename I>() {
      T* self_data = static_cast<T*>(self_p.raw_data());
      const I* index_data = static_cast<const I*>(index_p.raw_data());
      const T* source_data = static_cast<const T*>(source_p.raw_data());
      for_each_line<3>(shape, {self_strides, index_p.strides(), source_p.strides()},
                       [&](const std::array<int64_t, 3>& o) {
        T* self_line = self_data + o[0];
        const I* index_line = index_data + o[1];
        const T* source_line = source_data + o[2];
        for (int64_t k = 0; k < count; ++k) {
          T& target = self_line[static_cast<int64_t>(index_line[k * index_step]) * self_dim_stride];
          const T value = source_line[k * source_step];
          if (!accumulate) {
            target = value;
          } else {
            // The add of op_math.h: integers wrap (no signed overflow), bool is `or`,
            // f16/bf16 add in f32.
            using C = compute_t<T>;
            target = static_cast<T>(math::binary<BinaryOp::add>(static_cast<C>(target), static_cast<C>(value)));
          }
        }
      });
    });
  });
}

}  // namespace keel::cpu
