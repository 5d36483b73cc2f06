// Reductions: argument checks, result shapes and dtypes (PyTorch's rules), device binding.
// sum/prod/amax/amin/all/any and max/min/argmax/argmin call kernels; mean, var, std,
// logsumexp and norm are composites of those and of elementwise ops:
//   mean      = sum(x) / N                         (N = number of reduced elements; 0/0 = nan)
//   var       = sum((x - mean(x))^2) / max(0, N - correction)
//   std       = sqrt(var)
//   logsumexp = m + log(sum(exp(x - m))),  m = amax(x) with +-inf replaced by 0 (PyTorch's guard)
//   norm_p    = sum(|x|^p)^(1/p); p = inf: amax|x|, -inf: amin|x|, 0: count of non-zeros
// f16/bf16 composites compute in f32 and round once at the end.
//
// Backward (each reduction records one node; dy is first put back in x's rank, reduced dims 1):
//   sum: dy           mean: dy / N        prod: dy * prod(others) (zeros handled apart)
//   amax/amin, max/min over all: dy split evenly among the elements equal to the result
//   max/min(dim): dy to the index returned          var: dy * 2 (x - mean) / (N - correction)
//   std: dy (x - mean) / ((N - correction) std)     logsumexp: dy * exp(x - y)
//   norm_p: dy * sign(x) |x|^(p-1) / y^(p-1) (0 where y = 0); inf: like amax of |x| with sign(x)
#include "keel/ops/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "keel/autograd/record.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/cuda/cuda_kernels.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/shape.h"

namespace keel {

namespace {

// The reduced dims of x for a dims list, and the shapes of the result.
struct Reduction {
  std::vector<int64_t> dims;  // wrapped, ascending; empty for a 0-D x
  Shape kept_shape;           // x's rank, 1 in reduced dims (what kernels write)
  Shape result_shape;         // kept_shape, or without the reduced dims when !keepdim
  int64_t count = 1;          // reduced elements per output element
};

Reduction plan_reduction(const char* op, const Tensor& x, const Dims& dims, bool keepdim) {
  const int64_t ndim = x.dim();
  std::vector<bool> reduced(static_cast<size_t>(std::max<int64_t>(ndim, 1)), dims.empty());
  for (int64_t d : dims) {
    const int64_t wrapped = wrap_dim(d, ndim, op);
    KEEL_CHECK(!reduced[wrapped], "[", op, "] dim ", wrapped, " appears multiple times in the list of dims: got ",
               dims);
    reduced[wrapped] = true;
  }
  Reduction r;
  for (int64_t d = 0; d < ndim; ++d) {
    if (reduced[d]) {
      r.dims.push_back(d);
      r.count *= x.shape()[d];
    }
    r.kept_shape.push_back(reduced[d] ? 1 : x.shape()[d]);
    if (!reduced[d] || keepdim) r.result_shape.push_back(reduced[d] ? 1 : x.shape()[d]);
  }
  return r;
}

// Reductions without an identity refuse empty reduced dims, as PyTorch does.
void check_not_empty(const char* op, const Tensor& x, const Reduction& r) {
  bool empty_dim = false;
  for (int64_t d : r.dims) empty_dim = empty_dim || x.shape()[d] == 0;
  KEEL_CHECK(!empty_dim, "[", op, "] cannot reduce over an empty dim (the op has no identity): got shape ",
             x.shape(), " and dims ", r.dims);
}

void check_floating(const char* op, const Tensor& x) {
  KEEL_CHECK(is_floating(x.dtype()), "[", op, "] expected a floating input, got dtype ", dtype_name(x.dtype()),
             " (convert it first, e.g. x.to(f32))");
}

void launch_reduce(ReduceOp op, const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  if (x.is_cuda()) cuda::reduce(op, out, x, dims);
  else cpu::reduce(op, out, x, dims);
}

void launch_arg_reduce(bool is_max, const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim) {
  if (x.is_cuda()) cuda::arg_reduce(is_max, values, indices, x, dim);
  else cpu::arg_reduce(is_max, values, indices, x, dim);
}

Tensor primitive(ReduceOp op, const char* name, const Tensor& x, const Dims& dims, bool keepdim, DType out_dtype) {
  KEEL_CHECK(x.defined(), "[", name, "] got an undefined tensor");
  const Reduction r = plan_reduction(name, x, dims, keepdim);
  Tensor out = empty(r.kept_shape, {out_dtype, x.device()});
  if (out.numel() > 0) launch_reduce(op, out, x, r.dims);
  return keepdim ? out : out.view(r.result_shape);
}

// sum/prod: bool and integers accumulate into i64 unless a dtype is asked for.
DType accumulate_dtype(const Tensor& x, std::optional<DType> dtype) {
  if (dtype) return *dtype;
  return is_floating(x.dtype()) ? x.dtype() : DType::i64;
}

// The dtype composites compute in: f16/bf16 go through f32.
DType composite_dtype(DType dtype) { return is_reduced_float(dtype) ? DType::f32 : dtype; }

Tensor finish(const Tensor& result, DType dtype) { return result.dtype() == dtype ? result : result.to(dtype); }

ValuesIndices arg_extreme(bool is_max, const char* name, const Tensor& x, int64_t dim, bool keepdim) {
  KEEL_CHECK(x.defined(), "[", name, "] got an undefined tensor");
  const int64_t wrapped = wrap_dim(dim, x.dim(), name);
  if (x.dim() == 0) {  // a 0-D tensor is its own extreme, at index 0
    KEEL_CHECK(x.numel() == 1, "[", name, "] empty tensor");
    return {x.clone(), zeros({}, {DType::i64, x.device()})};
  }
  KEEL_CHECK(x.shape()[wrapped] > 0, "[", name, "] cannot reduce over an empty dim (the op has no identity): got shape ",
             x.shape(), " and dim ", wrapped);
  Shape kept = x.shape();
  kept[wrapped] = 1;
  Tensor values = empty(kept, x.options());
  Tensor indices = empty(kept, {DType::i64, x.device()});
  if (values.numel() > 0) launch_arg_reduce(is_max, values, indices, x, wrapped);
  if (!keepdim) {
    values = values.squeeze(wrapped);
    indices = indices.squeeze(wrapped);
  }
  return {values, indices};
}

Tensor arg_index(bool is_max, const char* name, const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  KEEL_CHECK(x.defined(), "[", name, "] got an undefined tensor");
  KEEL_CHECK(x.dtype() != DType::bool_, "[", name, "] not implemented for bool tensors");
  if (dim) return arg_extreme(is_max, name, x, *dim, keepdim).indices;
  KEEL_CHECK(x.numel() > 0, "[", name, "] cannot reduce an empty tensor (the op has no identity): got shape ",
             x.shape());
  // (unsqueeze for 0-D: Tensor::reshape refuses [] -> [1])
  const Tensor flat = x.dim() == 0 ? x.unsqueeze(0) : x.reshape({-1});
  Tensor index = arg_extreme(is_max, name, flat, 0, false).indices;
  if (!keepdim) return index;
  Tensor kept = empty(Shape(static_cast<size_t>(x.dim()), 1), index.options());
  kept.copy_(index);  // (a view of 0-D as [1, 1] is refused by Tensor::view)
  return kept;
}

}  // namespace

static Tensor sum_forward(const Tensor& x, const Dims& dims, bool keepdim, std::optional<DType> dtype) {
  return primitive(ReduceOp::sum, "sum", x, dims, keepdim, accumulate_dtype(x, dtype));
}

static Tensor prod_forward(const Tensor& x, const Dims& dims, bool keepdim, std::optional<DType> dtype) {
  return primitive(ReduceOp::prod, "prod", x, dims, keepdim, accumulate_dtype(x, dtype));
}

static Tensor amax_forward(const Tensor& x, const Dims& dims, bool keepdim) {
  check_not_empty("amax", x, plan_reduction("amax", x, dims, keepdim));
  return primitive(ReduceOp::amax, "amax", x, dims, keepdim, x.dtype());
}

static Tensor amin_forward(const Tensor& x, const Dims& dims, bool keepdim) {
  check_not_empty("amin", x, plan_reduction("amin", x, dims, keepdim));
  return primitive(ReduceOp::amin, "amin", x, dims, keepdim, x.dtype());
}

Tensor all(const Tensor& x, const Dims& dims, bool keepdim) {
  return primitive(ReduceOp::all, "all", x, dims, keepdim, DType::bool_);
}

Tensor any(const Tensor& x, const Dims& dims, bool keepdim) {
  return primitive(ReduceOp::any, "any", x, dims, keepdim, DType::bool_);
}

static Tensor mean_forward(const Tensor& x, const Dims& dims, bool keepdim) {
  check_floating("mean", x);
  const Reduction r = plan_reduction("mean", x, dims, keepdim);
  const DType compute = composite_dtype(x.dtype());
  Tensor total = sum(x, dims, keepdim, compute);
  return finish(div(total, Scalar(static_cast<double>(r.count))), x.dtype());
}

static Tensor var_forward(const Tensor& x, const Dims& dims, double correction, bool keepdim) {
  check_floating("var", x);
  const Reduction r = plan_reduction("var", x, dims, keepdim);
  const Tensor wide = x.to(composite_dtype(x.dtype()));
  const Tensor deviation = sub(wide, mean(wide, dims, true));
  const Tensor squares = sum(mul(deviation, deviation), dims, keepdim);
  const double denominator = std::max(0.0, static_cast<double>(r.count) - correction);
  return finish(div(squares, Scalar(denominator)), x.dtype());
}

static Tensor std_forward(const Tensor& x, const Dims& dims, double correction, bool keepdim) {
  check_floating("std", x);
  const Tensor wide = x.to(composite_dtype(x.dtype()));
  return finish(sqrt(var(wide, dims, correction, keepdim)), x.dtype());
}

static Tensor logsumexp_forward(const Tensor& x, const Dims& dims, bool keepdim) {
  check_floating("logsumexp", x);
  const Reduction r = plan_reduction("logsumexp", x, dims, keepdim);
  const Tensor wide = x.to(composite_dtype(x.dtype()));
  if (r.count == 0 || x.numel() == 0) {  // log(0) = -inf over empty dims, as PyTorch
    const DType dtype = x.dtype();
    return full(r.result_shape, -std::numeric_limits<double>::infinity(), {dtype, x.device()});
  }
  // An infinite maximum would give inf - inf = nan; shifting by 0 there gives the right +-inf.
  Tensor m = amax(wide, dims, true);
  m = where(isinf(m), Scalar(0.0), m);
  Tensor result = add(log(sum(exp(sub(wide, m)), dims, true)), m);
  if (!keepdim) result = result.view(r.result_shape);
  return finish(result, x.dtype());
}

static Tensor norm_forward(const Tensor& x, double p, const Dims& dims, bool keepdim) {
  check_floating("norm", x);
  const Reduction r = plan_reduction("norm", x, dims, keepdim);
  const Tensor wide = x.to(composite_dtype(x.dtype()));
  const Tensor magnitude = abs(wide);
  Tensor result;
  if (std::isinf(p)) {
    KEEL_CHECK(r.count > 0, "[norm] the ", p > 0 ? "inf" : "-inf",
               "-norm of an empty dim is undefined: got shape ", x.shape(), " and dims ", r.dims);
    result = p > 0 ? amax(magnitude, dims, keepdim) : amin(magnitude, dims, keepdim);
  } else if (p == 0) {
    result = sum(ne(wide, Scalar(0.0)), dims, keepdim, wide.dtype());
  } else if (p == 1) {
    result = sum(magnitude, dims, keepdim);
  } else if (p == 2) {
    result = sqrt(sum(mul(wide, wide), dims, keepdim));
  } else {
    result = pow(sum(pow(magnitude, Scalar(p)), dims, keepdim), Scalar(1.0 / p));
  }
  return finish(result, x.dtype());
}


Tensor max(const Tensor& x) {
  KEEL_CHECK(x.defined() && x.numel() > 0, "[max] cannot reduce an empty tensor (the op has no identity): got shape ",
             x.defined() ? x.shape() : Shape{});
  return amax(x);
}

Tensor min(const Tensor& x) {
  KEEL_CHECK(x.defined() && x.numel() > 0, "[min] cannot reduce an empty tensor (the op has no identity): got shape ",
             x.defined() ? x.shape() : Shape{});
  return amin(x);
}

Tensor argmax(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  return arg_index(true, "argmax", x, dim, keepdim);
}

Tensor argmin(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  return arg_index(false, "argmin", x, dim, keepdim);
}

}  // namespace keel

namespace keel {

Tensor sum_to_size(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int64_t lead = x.dim() - static_cast<int64_t>(shape.size());
  KEEL_CHECK(lead >= 0, "[sum_to_size] cannot sum shape ", x.shape(), " to the larger rank of ", shape);
  Dims dims;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
      continue;
    }
    const int64_t target = shape[d - lead];
    KEEL_CHECK(target == x.shape()[d] || target == 1, "[sum_to_size] shape ", x.shape(), " does not broadcast from ",
               shape);
    if (target == 1 && x.shape()[d] != 1) dims.push_back(d);
  }
  Tensor summed = dims.empty() ? x : sum(x, dims, /*keepdim=*/true);
  return summed.shape() == shape ? summed : summed.reshape(shape);
}

}  // namespace keel

namespace keel {

namespace {
using autograd::OpRecord;
using autograd::TensorList;
using autograd::VjpArgs;

// What a reduction's vjp needs to know about its forward.
struct ReducedDims {
  std::vector<int64_t> dims;  // wrapped, ascending
  Shape input_shape;
  bool keepdim;
  int64_t count;  // reduced elements per output element
};

ReducedDims reduced_dims(const char* op, const Tensor& x, const Dims& dims, bool keepdim) {
  const Reduction r = plan_reduction(op, x, dims, keepdim);
  return {r.dims, x.shape(), keepdim, r.count};
}

// A reduction's result back in its input's rank (size 1 in the reduced dims), ready to broadcast.
Tensor unreduce(const Tensor& y, const ReducedDims& r) {
  if (r.keepdim || y.dim() == static_cast<int64_t>(r.input_shape.size())) return y;
  Tensor out = y;
  for (int64_t d : r.dims) out = out.unsqueeze(d);
  return out;
}

// amax/amin/max()/min(): dy shared evenly by the elements equal to the extreme (PyTorch's rule).
Tensor extreme_vjp(const Tensor& g, const Tensor& x, const Tensor& y, const ReducedDims& r) {
  const Tensor mask = eq(x, unreduce(y, r));
  const Tensor count = sum(mask, r.dims, true, x.dtype());
  return where(mask, unreduce(g, r) / count, 0);
}

template <class Forward, class Vjp>
Tensor reduction(const char* name, const Tensor& x, const Dims& dims, bool keepdim, bool save_x, bool save_y,
                 Forward&& forward, Vjp&& vjp) {
  OpRecord record(name, x);
  if (record.traced()) record.trace_attr("dims", reduced_dims(name, x, dims, keepdim).dims);  // wrapped; empty dims: all
  record.trace_attr("keepdim", keepdim);
  Tensor out = forward();
  if (record) {
    record.finish({out}, {save_x ? x : Tensor(), save_y ? out : Tensor()},
                  [r = reduced_dims(name, x, dims, keepdim), vjp](const VjpArgs& a) {
                    return TensorList{vjp(a.grad(), a.saved[0], a.saved[1], r)};
                  });
  }
  return out;
}
}  // namespace

Tensor sum(const Tensor& x, const Dims& dims, bool keepdim, std::optional<DType> dtype) {
  return reduction("sum", x, dims, keepdim, false, false, [&] { return sum_forward(x, dims, keepdim, dtype); },
                   [](const Tensor& g, const Tensor&, const Tensor&, const ReducedDims& r) {
                     return unreduce(g, r).expand(r.input_shape);
                   });
}

Tensor mean(const Tensor& x, const Dims& dims, bool keepdim) {
  return reduction("mean", x, dims, keepdim, false, false, [&] { return mean_forward(x, dims, keepdim); },
                   [](const Tensor& g, const Tensor&, const Tensor&, const ReducedDims& r) {
                     return (unreduce(g, r) / static_cast<double>(r.count)).expand(r.input_shape);
                   });
}

Tensor prod(const Tensor& x, const Dims& dims, bool keepdim, std::optional<DType> dtype) {
  return reduction("prod", x, dims, keepdim, true, true, [&] { return prod_forward(x, dims, keepdim, dtype); },
                   [](const Tensor& g, const Tensor& x, const Tensor& y, const ReducedDims& r) {
                     // d prod / d x_i = prod of the others: y / x_i where x_i != 0; where x_i is the
                     // only zero of its slice, the product of the non-zeros; 0 when there are more.
                     const Tensor is_zero = eq(x, 0);
                     const Tensor zeros_in_slice = sum(is_zero, r.dims, true);
                     const Tensor nonzero_product = prod(where(is_zero, 1, x), r.dims, true);
                     const Tensor others = where(is_zero, where(eq(zeros_in_slice, 1), nonzero_product, 0),
                                                 unreduce(y, r).to(x.dtype()) / where(is_zero, 1, x));
                     return unreduce(g, r) * others;
                   });
}

Tensor amax(const Tensor& x, const Dims& dims, bool keepdim) {
  return reduction("amax", x, dims, keepdim, true, true, [&] { return amax_forward(x, dims, keepdim); }, extreme_vjp);
}

Tensor amin(const Tensor& x, const Dims& dims, bool keepdim) {
  return reduction("amin", x, dims, keepdim, true, true, [&] { return amin_forward(x, dims, keepdim); }, extreme_vjp);
}

Tensor var(const Tensor& x, const Dims& dims, double correction, bool keepdim) {
  return reduction("var", x, dims, keepdim, true, false, [&] { return var_forward(x, dims, correction, keepdim); },
                   [correction](const Tensor& g, const Tensor& x, const Tensor&, const ReducedDims& r) {
                     const double denominator = std::max(0.0, static_cast<double>(r.count) - correction);
                     return unreduce(g, r) * (x - mean(x, r.dims, true)) * (2.0 / denominator);
                   });
}

Tensor std(const Tensor& x, const Dims& dims, double correction, bool keepdim) {
  return reduction("std", x, dims, keepdim, true, true, [&] { return std_forward(x, dims, correction, keepdim); },
                   [correction](const Tensor& g, const Tensor& x, const Tensor& y, const ReducedDims& r) {
                     const double denominator = std::max(0.0, static_cast<double>(r.count) - correction);
                     return unreduce(g, r) * (x - mean(x, r.dims, true)) / (unreduce(y, r) * denominator);
                   });
}

Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim) {
  return reduction("logsumexp", x, dims, keepdim, true, true, [&] { return logsumexp_forward(x, dims, keepdim); },
                   [](const Tensor& g, const Tensor& x, const Tensor& y, const ReducedDims& r) {
                     return unreduce(g, r) * exp(x - unreduce(y, r));
                   });
}

Tensor norm(const Tensor& x, double p, const Dims& dims, bool keepdim) {
  return reduction("norm", x, dims, keepdim, true, true, [&] { return norm_forward(x, p, dims, keepdim); },
                   [p](const Tensor& g, const Tensor& x, const Tensor& y, const ReducedDims& r) -> Tensor {
                     const Tensor dy = unreduce(g, r), norm = unreduce(y, r);
                     if (p == 0) return zeros_like(x) * dy;
                     if (p == 1) return sign(x) * dy;
                     if (std::isinf(p)) return sign(x) * extreme_vjp(g, abs(x), y, r);
                     // p = 2: x / y;  other p: sign(x) |x|^(p-1) / y^(p-1). Zero where the norm is 0.
                     const Tensor scale = p == 2 ? x / norm : sign(x) * pow(abs(x), p - 1) / pow(norm, p - 1);
                     return where(eq(norm, 0), 0, scale * dy);
                   });
}

namespace {
ValuesIndices extreme_along(bool is_max, const char* name, const Tensor& x, int64_t dim, bool keepdim) {
  OpRecord record(name, x);
  ValuesIndices result = arg_extreme(is_max, name, x, dim, keepdim);
  if (record) {
    const int64_t d = x.dim() == 0 ? 0 : wrap_dim(dim, x.dim(), name);
    record.finish({result.values, result.indices}, {result.indices},
                  [d, keepdim, shape = x.shape()](const VjpArgs& a) {
                    if (shape.empty()) return TensorList{a.grad()};
                    Tensor index = a.saved[0], g = a.grad();
                    if (!keepdim) {
                      index = index.unsqueeze(d);
                      g = g.unsqueeze(d);
                    }
                    return TensorList{scatter(zeros(shape, g.options()), d, index, g)};
                  });
  }
  return result;
}
}  // namespace

ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim) { return extreme_along(true, "max", x, dim, keepdim); }
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim) { return extreme_along(false, "min", x, dim, keepdim); }

}  // namespace keel
