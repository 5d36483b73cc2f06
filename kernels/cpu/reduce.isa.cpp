// Reduction CPU kernels: reduce (sum, prod, amax, amin, all, any over a set of dims) and
// arg_reduce (max/min value and its index along one dim).
//
//   out[k] = op over r of x[k, r]      k: kept index, r: reduced index (out has size 1 in r's dims)
//   bytes per call: numel(x) * itemsize(x) + numel(out) * itemsize(out); FLOPs: numel(x).
//   reference: kernels/reference/reference.h reduce() in float64.
//
// Dims are collapsed first (collapse()): size-1 dims dropped, dims sorted by x stride, and
// neighbours merged, so any layout becomes alternating kept/reduced groups. Then:
//   (a) innermost dim reduced: each output reduces unit-stride runs with kLanes independent
//       accumulators (vectorized; no dependency chain on one register);
//   (b) innermost dim kept and contiguous: whole rows of outputs accumulate one reduced index
//       at a time (unit-stride loads and stores; columns in chunks of 512 stay in L1);
//   (c) few outputs with long reductions (a full reduction): the reduced range is split across
//       OpenMP threads and the partials combined in order;
//   anything else walks strided runs. Below kParallelGrain elements of work one thread runs.
// Accuracy: sums of f32/f16/bf16 add blocks of 1024 values in float with 16 lanes (each lane
// sums 64 values; the lanes are added pairwise) and add the block sums in double, so the error
// stays near float rounding of a 64-term sum regardless of length (1e7 elements: < 1e-7
// relative in practice). Outer-dim (row) sums accumulate in double. f16/bf16 inputs are read
// as float. Integer sums and products accumulate in int64 (wrapping). amax/amin propagate NaN.
// arg_reduce: the first index of the extreme wins; a NaN is the extreme (PyTorch).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/isa_table.h"
#include "keel/kernels/cpu/strided_loop.h"
#include "keel/kernels/dispatch.h"

namespace keel::cpu::KEEL_CPU_ISA {

void copy(const Tensor& dst, const Tensor& src);  // elementwise.isa.cpp

namespace {

template <typename T> inline bool is_nan_value(T v) {
  if constexpr (std::is_floating_point_v<T>) return v != v;
  else return false;
}

// Accumulator type of op with result type O.
template <ReduceOp op, typename O> struct AccOf {
  using type = compute_t<O>;
};
template <typename O> struct AccOf<ReduceOp::sum, O> {
  using type = std::conditional_t<std::is_floating_point_v<compute_t<O>>, double, int64_t>;
};
template <typename O> struct AccOf<ReduceOp::prod, O> {
  using type = std::conditional_t<std::is_floating_point_v<compute_t<O>>, double, int64_t>;
};
template <typename O> struct AccOf<ReduceOp::all, O> { using type = bool; };
template <typename O> struct AccOf<ReduceOp::any, O> { using type = bool; };
template <ReduceOp op, typename O> using acc_t = typename AccOf<op, O>::type;


template <ReduceOp op, typename A> inline A combine(A a, A b) {
  if constexpr (op == ReduceOp::sum) {
    if constexpr (std::is_same_v<A, int64_t>)
      return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
    else return a + b;
  } else if constexpr (op == ReduceOp::prod) {
    if constexpr (std::is_same_v<A, int64_t>)
      return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
    else return a * b;
  } else if constexpr (op == ReduceOp::all) {
    return a && b;
  } else if constexpr (op == ReduceOp::any) {
    return a || b;
  } else if constexpr (op == ReduceOp::amax) {
    // Bitwise |, not ||: no branch, so the lane loops vectorize into compare + blend.
    const bool take = (b > a) | is_nan_value(b);
    return take ? b : a;
  } else {
    const bool take = (b < a) | is_nan_value(b);
    return take ? b : a;
  }
}

// One element of x (dtype X) read as op's accumulator for result type O.
template <ReduceOp op, typename O, typename X> inline acc_t<op, O> load(X v) {
  using A = acc_t<op, O>;
  if constexpr (op == ReduceOp::all || op == ReduceOp::any) return convert<bool>(v);
  else return static_cast<A>(static_cast<compute_t<O>>(convert<O>(v)));
}

struct Dim {
  int64_t size, x_stride, out_stride;  // strides in elements
  bool reduced;
};

// x's dims without size-1 dims, ordered by decreasing x stride (reduction order is free, and
// a transposed input becomes contiguous), neighbours of one kind merged when both x and out
// are contiguous across them: [A, B, C] reduced over {1, 2} contiguous becomes [A, B*C].
std::vector<Dim> collapse(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  std::vector<Dim> all_dims;
  bool any_broadcast = false;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.shape()[d] == 1) continue;
    const bool is_reduced = std::find(dims.begin(), dims.end(), d) != dims.end();
    all_dims.push_back({x.shape()[d], x.strides()[d], is_reduced ? 0 : out.strides()[d], is_reduced});
    any_broadcast = any_broadcast || x.strides()[d] == 0;
  }
  if (!any_broadcast)
    std::stable_sort(all_dims.begin(), all_dims.end(), [](const Dim& a, const Dim& b) { return a.x_stride > b.x_stride; });
  std::vector<Dim> merged;
  for (const Dim& d : all_dims) {
    if (!merged.empty()) {
      Dim& last = merged.back();
      if (last.reduced == d.reduced && last.x_stride == d.x_stride * d.size &&
          last.out_stride == d.out_stride * d.size) {
        last.size *= d.size;
        last.x_stride = d.x_stride;
        last.out_stride = d.out_stride;
        continue;
      }
    }
    merged.push_back(d);
  }
  return merged;
}

// Offsets (in elements) of flat index `index` of the row-major space spanned by `dims`.
inline void offsets_of(const std::vector<Dim>& dims, int64_t index, int64_t& x_offset, int64_t& out_offset) {
  x_offset = 0;
  out_offset = 0;
  for (size_t k = dims.size(); k-- > 0;) {
    const int64_t i = index % dims[k].size;
    index /= dims[k].size;
    x_offset += i * dims[k].x_stride;
    out_offset += i * dims[k].out_stride;
  }
}

template <typename T> inline int64_t product(const std::vector<T>& dims) {
  int64_t n = 1;
  for (const auto& d : dims) n *= d.size;
  return n;
}

// Lanes of the vector loops: float sums of f32/f16/bf16 run in float (blocks are then added
// in double), everything else in the accumulator type.
template <ReduceOp op, typename O>
using lane_t = std::conditional_t<op == ReduceOp::sum && std::is_same_v<compute_t<O>, float>, float, acc_t<op, O>>;

inline constexpr int kLanes = 16;         // independent accumulators (two AVX-512 / four AVX2 vectors of f32)
inline constexpr int64_t kBlock = 1024;   // elements per float block: lanes sum 64 values each

// op over n elements of x starting at p, `stride` elements apart.
template <ReduceOp op, typename O, typename X>
acc_t<op, O> reduce_run(const X* __restrict p, int64_t n, int64_t stride) {
  using A = acc_t<op, O>;
  using L = lane_t<op, O>;
  A total = reduce_identity<op, A>();
  if (stride != 1) {
    for (int64_t i = 0; i < n; ++i) total = combine<op>(total, load<op, O>(p[i * stride]));
    return total;
  }
  for (int64_t block = 0; block < n; block += kBlock) {
    const int64_t block_end = std::min(n, block + kBlock);
    L lanes[kLanes];
    for (int j = 0; j < kLanes; ++j) lanes[j] = reduce_identity<op, L>();
    int64_t i = block;
    if constexpr ((op == ReduceOp::amax || op == ReduceOp::amin) && std::is_floating_point_v<L> &&
                  std::is_same_v<X, L>) {
      // f32/f64 max/min in explicit 64-byte vectors (GCC vector extensions: one zmm, two ymm or
      // four xmm registers per step, whatever this file's ISA): compare-select, NaNs or-ed into a
      // mask on the side. The auto-vectorizer leaves the lane loop below scalar here.
      typedef L Vec __attribute__((vector_size(64)));
      using Mask = decltype(Vec{} != Vec{});
      constexpr int64_t kWidth = 64 / sizeof(L);
      Vec best;
      for (int64_t j = 0; j < kWidth; ++j) best[j] = reduce_identity<op, L>();
      Mask saw_nan = {};
      for (; i + kWidth <= block_end; i += kWidth) {
        Vec v;
        std::memcpy(&v, p + i, sizeof v);
        best = (op == ReduceOp::amax ? v > best : v < best) ? v : best;
        saw_nan |= v != v;
      }
      for (int64_t j = 0; j < kWidth; ++j) {
        if (saw_nan[j]) return std::numeric_limits<A>::quiet_NaN();
        lanes[j % kLanes] = combine<op>(lanes[j % kLanes], best[j]);
      }
    } else if constexpr ((op == ReduceOp::amax || op == ReduceOp::amin) && std::is_floating_point_v<L>) {
      // max/min lanes as plain compare-selects (maxps/minps) with NaNs counted on the side:
      // the NaN-propagating select of combine() does not vectorize.
      L nans[kLanes] = {};
      for (; i + kLanes <= block_end; i += kLanes)
        for (int j = 0; j < kLanes; ++j) {
          const L v = static_cast<L>(load<op, O>(p[i + j]));
          lanes[j] = (op == ReduceOp::amax ? v > lanes[j] : v < lanes[j]) ? v : lanes[j];
          nans[j] += v != v ? L(1) : L(0);
        }
      L nan_count = 0;
      for (int j = 0; j < kLanes; ++j) nan_count += nans[j];
      if (nan_count != 0) return std::numeric_limits<A>::quiet_NaN();
    }
    for (; i + kLanes <= block_end; i += kLanes)
      for (int j = 0; j < kLanes; ++j) lanes[j] = combine<op>(lanes[j], static_cast<L>(load<op, O>(p[i + j])));
    for (int j = 0; i < block_end; ++i, ++j) lanes[j] = combine<op>(lanes[j], static_cast<L>(load<op, O>(p[i])));
    // Pairwise over the lanes, then into the wide total.
    for (int width = kLanes / 2; width > 0; width /= 2)
      for (int j = 0; j < width; ++j) lanes[j] = combine<op>(lanes[j], lanes[j + width]);
    total = combine<op>(total, static_cast<A>(lanes[0]));
  }
  return total;
}

// op over flat indices [begin, end) of the reduced space `reduced` (innermost last) from base.
template <ReduceOp op, typename O, typename X>
acc_t<op, O> reduce_range(const X* base, const std::vector<Dim>& reduced, int64_t begin, int64_t end) {
  using A = acc_t<op, O>;
  A acc = reduce_identity<op, A>();
  if (reduced.empty()) return begin < end ? load<op, O>(*base) : acc;
  const Dim& run = reduced.back();
  while (begin < end) {
    int64_t x_offset, unused;
    offsets_of(reduced, begin, x_offset, unused);
    const int64_t within = begin % run.size;
    const int64_t count = std::min(run.size - within, end - begin);
    acc = combine<op>(acc, reduce_run<op, O>(base + x_offset, count, run.x_stride));
    begin += count;
  }
  return acc;
}

template <ReduceOp op, typename O, typename X>
void reduce_typed(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  using A = acc_t<op, O>;
  const std::vector<Dim> collapsed = collapse(out, x, dims);
  std::vector<Dim> kept, reduced;
  for (const Dim& d : collapsed) (d.reduced ? reduced : kept).push_back(d);
  const X* x_data = static_cast<const X*>(x.raw_data());
  O* out_data = static_cast<O*>(out.raw_data());
  const int64_t out_count = product(kept);
  const int64_t reduce_count = x.numel() == 0 ? 0 : product(reduced);
  const int64_t work = out_count * std::max<int64_t>(reduce_count, 1);

  // (b) The innermost dim is kept and contiguous in x and out: accumulate whole rows of
  // `width` outputs, one reduced index at a time (unit-stride, vectorized over the row).
  const bool rows = !collapsed.empty() && !collapsed.back().reduced && collapsed.back().x_stride == 1 &&
                    collapsed.back().out_stride == 1 && !reduced.empty() && reduce_count > 0;
  if (rows) {
    const int64_t width = kept.back().size;
    std::vector<Dim> outer(kept.begin(), kept.end() - 1);
    const int64_t row_count = product(outer);
    constexpr int64_t kChunk = 512;  // columns per unit of work: the accumulators stay in L1
    const int64_t chunks = (width + kChunk - 1) / kChunk;
    const int64_t units = row_count * chunks;
    auto accumulate = [&](int64_t row, int64_t column, int64_t columns, int64_t r_begin, int64_t r_end, A* acc) {
      int64_t x_row, out_row;
      offsets_of(outer, row, x_row, out_row);
      if constexpr (op == ReduceOp::sum && std::is_same_v<A, double> && std::is_same_v<X, float>) {
        // f32 column sums: add kRowBlock rows in float (twice the vector width of double, no
        // conversion per element), then the block's sums into the double accumulators.
        constexpr int64_t kRowBlock = 16;
        std::unique_ptr<float[]> block(new float[static_cast<size_t>(columns)]);
        for (int64_t r0 = r_begin; r0 < r_end; r0 += kRowBlock) {
          std::fill(block.get(), block.get() + columns, 0.0f);
          float* __restrict sums = block.get();
          for (int64_t r = r0; r < std::min(r_end, r0 + kRowBlock); ++r) {
            int64_t x_offset, unused;
            offsets_of(reduced, r, x_offset, unused);
            const float* __restrict p = x_data + x_row + x_offset + column;
            for (int64_t j = 0; j < columns; ++j) sums[j] += p[j];
          }
          for (int64_t j = 0; j < columns; ++j) acc[j] += sums[j];
        }
        return;
      }
      for (int64_t r = r_begin; r < r_end; ++r) {
        int64_t x_offset, unused;
        offsets_of(reduced, r, x_offset, unused);
        const X* __restrict p = x_data + x_row + x_offset + column;
        for (int64_t j = 0; j < columns; ++j) acc[j] = combine<op>(acc[j], load<op, O>(p[j]));
      }
    };
    const int threads = threads_for(work);
    // Split the reduced index across threads, each streaming its own contiguous band of x into
    // partial rows, when there are few rows or when all the partial rows fit in L2 anyway: the
    // column strips of the loop below would make each thread jump a row's stride per 2 KiB read.
    const bool partials_fit = static_cast<size_t>(row_count * width) * sizeof(A) <= (size_t{256} << 10);
    if (threads > 1 && (units < threads || partials_fit) && reduce_count >= 2 * threads) {
      const int64_t outputs = row_count * width;
      // (a unique_ptr array, not std::vector: vector<bool> has no data())
      std::unique_ptr<A[]> partial(new A[static_cast<size_t>(threads * outputs)]);
      std::fill(partial.get(), partial.get() + threads * outputs, reduce_identity<op, A>());
#pragma omp parallel num_threads(threads)
      {
        const int t = omp_get_thread_num(), count = omp_get_num_threads();
        const int64_t r_begin = reduce_count * t / count, r_end = reduce_count * (t + 1) / count;
        for (int64_t row = 0; row < row_count; ++row)
          accumulate(row, 0, width, r_begin, r_end, partial.get() + t * outputs + row * width);
      }
      for (int64_t row = 0; row < row_count; ++row) {
        int64_t x_row, out_row;
        offsets_of(outer, row, x_row, out_row);
        for (int64_t j = 0; j < width; ++j) {
          A acc = partial[row * width + j];
          for (int t = 1; t < threads; ++t) acc = combine<op>(acc, partial[t * outputs + row * width + j]);
          out_data[out_row + j] = convert<O>(acc);
        }
      }
      return;
    }
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t unit = 0; unit < units; ++unit) {
      const int64_t row = unit / chunks, column = unit % chunks * kChunk;
      const int64_t columns = std::min(kChunk, width - column);
      A acc[kChunk];
      for (int64_t j = 0; j < columns; ++j) acc[j] = reduce_identity<op, A>();
      accumulate(row, column, columns, 0, reduce_count, acc);
      int64_t x_row, out_row;
      offsets_of(outer, row, x_row, out_row);
      for (int64_t j = 0; j < columns; ++j) out_data[out_row + column + j] = convert<O>(acc[j]);
    }
    return;
  }

  // (a) and the generic fallback: each output reduces its own runs of the innermost reduced
  // dim (unit-stride runs get the vector loop of reduce_run).
  const int threads = threads_for(work);
  if (threads > 1 && out_count < threads) {
    // (c) Few outputs, each a long reduction (a full reduction when out_count is 1): split
    // each output's reduced range across threads and combine the partials in order.
    for (int64_t k = 0; k < out_count; ++k) {
      int64_t x_offset, out_offset;
      offsets_of(kept, k, x_offset, out_offset);
      std::unique_ptr<A[]> partial(new A[static_cast<size_t>(threads)]);
      std::fill(partial.get(), partial.get() + threads, reduce_identity<op, A>());
#pragma omp parallel num_threads(threads)
      {
        const int t = omp_get_thread_num(), count = omp_get_num_threads();
        const int64_t begin = reduce_count * t / count, end = reduce_count * (t + 1) / count;
        partial[t] = reduce_range<op, O>(x_data + x_offset, reduced, begin, end);
      }
      A acc = partial[0];
      for (int t = 1; t < threads; ++t) acc = combine<op>(acc, partial[t]);
      out_data[out_offset] = convert<O>(acc);
    }
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t k = 0; k < out_count; ++k) {
    int64_t x_offset, out_offset;
    offsets_of(kept, k, x_offset, out_offset);
    out_data[out_offset] = convert<O>(reduce_range<op, O>(x_data + x_offset, reduced, 0, reduce_count));
  }
}

// Instantiates the (result, input) dtype pairs ops use: equal dtypes, bool/integers summed into
// i64, anything tested by all/any into bool; other pairs convert x to out's dtype first.
template <ReduceOp op>
void reduce_op(const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  if (out.dtype() == x.dtype()) {
    dispatch_all(x.dtype(), "reduce", [&]<typename T>() { reduce_typed<op, T, T>(out, x, dims); });
  } else if (out.dtype() == DType::bool_ && (op == ReduceOp::all || op == ReduceOp::any)) {
    dispatch_all(x.dtype(), "reduce", [&]<typename X>() { reduce_typed<op, bool, X>(out, x, dims); });
  } else if (out.dtype() == DType::i64 && (is_integral(x.dtype()) || x.dtype() == DType::bool_)) {
    switch (x.dtype()) {
      case DType::bool_: return reduce_typed<op, int64_t, bool>(out, x, dims);
      case DType::i8: return reduce_typed<op, int64_t, int8_t>(out, x, dims);
      case DType::u8: return reduce_typed<op, int64_t, uint8_t>(out, x, dims);
      case DType::i32: return reduce_typed<op, int64_t, int32_t>(out, x, dims);
      default: break;
    }
  } else if (out.dtype() == DType::f32 && x.dtype() == DType::f16) {  // mean of f16 sums in f32
    reduce_typed<op, float, Half>(out, x, dims);
  } else if (out.dtype() == DType::f32 && x.dtype() == DType::bf16) {
    reduce_typed<op, float, BFloat16>(out, x, dims);
  } else {
    Tensor converted = empty(x.shape(), {out.dtype(), Device::cpu()});
    copy(converted, x);
    reduce_op<op>(out, converted, dims);
  }
}

// True when v replaces best: a strictly better value, or the first NaN (which then sticks).
template <bool is_max, typename C> inline bool arg_better(C v, C best) {
  if (is_nan_value(best)) return false;
  return (is_max ? v > best : v < best) || is_nan_value(v);
}

// x contiguous as [outer, length, inner] with inner > 1, reducing the middle dim: each output
// row of `inner` columns is updated one reduced index at a time (unit-stride loads, which the
// compiler turns into vector compares and blends), instead of walking strided columns.
template <bool is_max, typename T>
void arg_reduce_rows(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim) {
  using C = compute_t<T>;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= x.shape()[d];
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.shape()[d];
  const int64_t length = x.shape()[dim];
  constexpr int64_t kChunk = 256;  // columns per task: best values and indices stay in L1
  const int64_t chunks = (inner + kChunk - 1) / kChunk;
  const T* x_data = static_cast<const T*>(x.raw_data());
  T* value_data = static_cast<T*>(values.raw_data());
  int64_t* index_data = static_cast<int64_t*>(indices.raw_data());
  const int threads = threads_for(x.numel());
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t task = 0; task < outer * chunks; ++task) {
    const int64_t o = task / chunks, begin = (task % chunks) * kChunk;
    const int64_t width = std::min(kChunk, inner - begin);
    C best[kChunk];
    int64_t best_index[kChunk];
    const T* first = x_data + o * length * inner + begin;
    for (int64_t j = 0; j < width; ++j) {
      best[j] = static_cast<C>(first[j]);
      best_index[j] = 0;
    }
    for (int64_t r = 1; r < length; ++r) {
      const T* row = first + r * inner;
      for (int64_t j = 0; j < width; ++j) {
        const C v = static_cast<C>(row[j]);
        const bool take = arg_better<is_max>(v, best[j]);
        best[j] = take ? v : best[j];
        best_index[j] = take ? r : best_index[j];
      }
    }
    for (int64_t j = 0; j < width; ++j) {
      value_data[o * inner + begin + j] = static_cast<T>(best[j]);
      index_data[o * inner + begin + j] = best_index[j];
    }
  }
}

template <bool is_max, typename T>
void arg_reduce_typed(const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim) {
  using C = compute_t<T>;
  const int64_t ndim = x.dim();
  if (dim != ndim - 1 && x.is_contiguous() && values.is_contiguous() && indices.is_contiguous()) {
    return arg_reduce_rows<is_max, T>(values, indices, x, dim);
  }
  const int64_t length = x.shape()[dim], x_step = x.strides()[dim];
  const T* x_data = static_cast<const T*>(x.raw_data());
  T* value_data = static_cast<T*>(values.raw_data());
  int64_t* index_data = static_cast<int64_t*>(indices.raw_data());
  const int64_t out_count = values.numel();
  const int threads = threads_for(x.numel());
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t k = 0; k < out_count; ++k) {
    int64_t x_offset = 0, value_offset = 0, index_offset = 0, rest = k;
    for (int64_t d = ndim - 1; d >= 0; --d) {
      if (d == dim) continue;
      const int64_t i = rest % x.shape()[d];
      rest /= x.shape()[d];
      x_offset += i * x.strides()[d];
      value_offset += i * values.strides()[d];
      index_offset += i * indices.strides()[d];
    }
    C best = static_cast<C>(x_data[x_offset]);
    int64_t best_index = 0;
    for (int64_t i = 1; i < length && !is_nan_value(best); ++i) {
      const C v = static_cast<C>(x_data[x_offset + i * x_step]);
      if (arg_better<is_max>(v, best)) {
        best = v;
        best_index = i;
      }
    }
    value_data[value_offset] = static_cast<T>(best);
    index_data[index_offset] = best_index;
  }
}

}  // namespace

void reduce(ReduceOp op, const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  switch (op) {
    case ReduceOp::sum: return reduce_op<ReduceOp::sum>(out, x, dims);
    case ReduceOp::prod: return reduce_op<ReduceOp::prod>(out, x, dims);
    case ReduceOp::amax: return reduce_op<ReduceOp::amax>(out, x, dims);
    case ReduceOp::amin: return reduce_op<ReduceOp::amin>(out, x, dims);
    case ReduceOp::all: return reduce_op<ReduceOp::all>(out, x, dims);
    case ReduceOp::any: return reduce_op<ReduceOp::any>(out, x, dims);
  }
}

void arg_reduce(bool is_max, const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim) {
  KEEL_CHECK(values.dtype() == x.dtype(), "[arg_reduce] values must have x's dtype");
  if (x.numel() == 0) return;
  dispatch_all(x.dtype(), "arg_reduce", [&]<typename T>() {
    if (is_max) arg_reduce_typed<true, T>(values, indices, x, dim);
    else arg_reduce_typed<false, T>(values, indices, x, dim);
  });
}

}  // namespace keel::cpu::KEEL_CPU_ISA
