// Ops that build, split and index tensors: cat, stack, split, chunk, gather, scatter,
// scatter_add, index_select, masked_fill, one_hot, tril, triu. PyTorch's semantics throughout.
//
// cat/stack copy each input into a view of the output with copy_ (so every device and dtype
// conversion works); split/chunk return views. The indexing ops bind kernels/cpu/index.cpp and
// the CUDA kernels of the same names. masked_fill, tril and triu are where() with a mask, so
// they work for every dtype and device without kernels of their own.
// Backward rules arrive with autograd: cat -> split of the gradient, gather <-> scatter_add,
// index_select -> index_add (scatter_add), masked_fill / tril / triu -> the same mask on the grad.
#include "keel/ops/shape.h"

#include <algorithm>
#include <limits>

#include "keel/autograd/record.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/cuda/cuda_kernels.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"

namespace keel {

namespace {

void check_defined(const char* op, const Tensor& t, const char* name) {
  KEEL_CHECK(t.defined(), "[", op, "] ", name, " is undefined");
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b, const char* name_b) {
  KEEL_CHECK(a.device() == b.device(), "[", op, "] ", name_b, " is on ", b.device().str(),
             " but the input is on ", a.device().str());
}

// 0-D tensors behave as 1-element 1-D tensors in the indexing kernels (as in PyTorch).
Tensor at_least_1d(const Tensor& t) { return t.dim() == 0 ? t.view({1}) : t; }


}  // namespace

// ---- cat and stack -------------------------------------------------------------------------------
namespace {
Tensor cat_forward(const std::vector<Tensor>& tensors, int64_t dim) {
  KEEL_CHECK(!tensors.empty(), "[cat] expects a non-empty list of tensors");
  DType dtype = DType::bool_;
  const Tensor* reference = nullptr;  // the first input that is not a legacy empty [0] tensor
  size_t reference_index = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    KEEL_CHECK(t.defined(), "[cat] tensor ", i, " is undefined");
    KEEL_CHECK(t.dim() > 0, "[cat] zero-dimensional tensor (at index ", i, ") cannot be concatenated");
    KEEL_CHECK(t.device() == tensors[0].device(), "[cat] tensor ", i, " is on ", t.device().str(),
               " but tensor 0 is on ", tensors[0].device().str());
    dtype = i == 0 ? t.dtype() : promote_types(dtype, t.dtype());
    const bool legacy_empty = t.dim() == 1 && t.shape()[0] == 0;
    if (!legacy_empty && reference == nullptr) {
      reference = &t;
      reference_index = i;
    }
  }
  if (reference == nullptr) return empty({0}, {dtype, tensors[0].device()});
  const int64_t d = wrap_dim(dim, reference->dim(), "cat");
  Shape shape = reference->shape();
  shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (t.dim() == 1 && t.shape()[0] == 0) continue;
    bool matches = t.dim() == reference->dim();
    for (int64_t k = 0; matches && k < t.dim(); ++k) matches = k == d || t.shape()[k] == reference->shape()[k];
    KEEL_CHECK(matches, "[cat] tensor ", i, " has shape ", t.shape(), " but tensor ", reference_index,
               " has shape ", reference->shape(), ": sizes must match except in dim ", d);
    shape[d] += t.shape()[d];
  }
  Tensor out = empty(shape, {dtype, reference->device()});
  int64_t start = 0;
  for (const Tensor& t : tensors) {
    if (t.dim() == 1 && t.shape()[0] == 0) continue;
    const int64_t length = t.shape()[d];
    if (length > 0) out.narrow(d, start, length).copy_(t);
    start += length;
  }
  return out;
}

Tensor stack_forward(const std::vector<Tensor>& tensors, int64_t dim) {  KEEL_CHECK(!tensors.empty(), "[stack] expects a non-empty list of tensors");
  check_defined("stack", tensors[0], "tensor 0");
  const Shape& shape = tensors[0].shape();
  DType dtype = tensors[0].dtype();
  for (size_t i = 1; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    KEEL_CHECK(t.defined(), "[stack] tensor ", i, " is undefined");
    KEEL_CHECK(t.shape() == shape, "[stack] tensor ", i, " has shape ", t.shape(), " but tensor 0 has shape ",
               shape, ": stack needs equal shapes");
    KEEL_CHECK(t.device() == tensors[0].device(), "[stack] tensor ", i, " is on ", t.device().str(),
               " but tensor 0 is on ", tensors[0].device().str());
    dtype = promote_types(dtype, t.dtype());
  }
  const int64_t d = wrap_dim(dim, static_cast<int64_t>(shape.size()) + 1, "stack");
  Shape out_shape = shape;
  out_shape.insert(out_shape.begin() + d, static_cast<int64_t>(tensors.size()));
  Tensor out = empty(out_shape, {dtype, tensors[0].device()});
  if (out.numel() == 0) return out;
  for (size_t i = 0; i < tensors.size(); ++i) out.select(d, static_cast<int64_t>(i)).copy_(tensors[i]);
  return out;
}
}  // namespace

// cat: each input gets its slice of dy; stack: each input gets dy.select(dim, i).
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  autograd::OpRecord record("cat", tensors);
  record.trace_attr("dim", dim);
  Tensor out = cat_forward(tensors, dim);
  if (record) {
    std::vector<Shape> shapes;
    for (const Tensor& t : tensors) shapes.push_back(t.shape());
    const int64_t d = wrap_dim(dim, out.dim(), "cat");
    record.finish({out}, {}, [shapes, d](const autograd::VjpArgs& a) {
      autograd::TensorList grads;
      int64_t start = 0;
      for (size_t i = 0; i < shapes.size(); ++i) {
        const bool legacy_empty = shapes[i].size() == 1 && shapes[i][0] == 0;
        if (legacy_empty) {
          grads.push_back(zeros(shapes[i], a.grad().options()));
          continue;
        }
        const int64_t length = shapes[i][d];
        grads.push_back(a.needs(i) ? a.grad().narrow(d, start, length) : Tensor());
        start += length;
      }
      return grads;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  autograd::OpRecord record("stack", tensors);
  record.trace_attr("dim", dim);
  Tensor out = stack_forward(tensors, dim);
  if (record) {
    const int64_t d = wrap_dim(dim, out.dim(), "stack");
    record.finish({out}, {}, [d, count = tensors.size()](const autograd::VjpArgs& a) {
      autograd::TensorList grads;
      for (size_t i = 0; i < count; ++i)
        grads.push_back(a.needs(i) ? a.grad().select(d, static_cast<int64_t>(i)) : Tensor());
      return grads;
    });
  }
  return out;
}

// ---- split and chunk -------------------------------------------------------------------------------
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  KEEL_CHECK(x.dim() > 0, "[split] expects at least a 1-D tensor, got a 0-D tensor");
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  KEEL_CHECK(split_size >= 0, "[split] split_size must be non-negative, got ", split_size);
  const int64_t size = x.shape()[d];
  KEEL_CHECK(split_size > 0 || size == 0, "[split] split_size can only be 0 if the dim is empty, but dim ", d,
             " of shape ", x.shape(), " has size ", size);
  // At least one piece, even when split_size exceeds the size (as PyTorch).
  const int64_t pieces = split_size == 0 ? 1 : std::max<int64_t>((size + split_size - 1) / split_size, 1);
  std::vector<Tensor> result;
  result.reserve(static_cast<size_t>(pieces));
  for (int64_t i = 0; i < pieces; ++i) {
    const int64_t start = i * split_size;
    result.push_back(x.narrow(d, start, std::min(split_size, size - start)));
  }
  return result;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& split_sizes, int64_t dim) {
  KEEL_CHECK(x.dim() > 0, "[split] expects at least a 1-D tensor, got a 0-D tensor");
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  const int64_t size = x.shape()[d];
  int64_t total = 0;
  for (int64_t piece : split_sizes) {
    KEEL_CHECK(piece >= 0, "[split] split_sizes must be non-negative, got ", Shape(split_sizes));
    total += piece;
  }
  KEEL_CHECK(total == size, "[split] split_sizes ", Shape(split_sizes), " sum to ", total, " but dim ", d,
             " of shape ", x.shape(), " has size ", size);
  std::vector<Tensor> result;
  result.reserve(split_sizes.size());
  int64_t start = 0;
  for (int64_t piece : split_sizes) {
    result.push_back(x.narrow(d, start, piece));
    start += piece;
  }
  return result;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  KEEL_CHECK(x.dim() > 0, "[chunk] expects at least a 1-D tensor, got a 0-D tensor");
  KEEL_CHECK(chunks > 0, "[chunk] chunks must be greater than 0, got ", chunks);
  const int64_t d = wrap_dim(dim, x.dim(), "chunk");
  const int64_t size = x.shape()[d];
  const int64_t split_size = (size + chunks - 1) / chunks;
  // An empty dim gives `chunks` empty pieces (split would give one), as torch.chunk.
  if (size == 0) return split(x, std::vector<int64_t>(static_cast<size_t>(chunks), 0), d);
  return split(x, split_size, d);
}

// ---- gather, scatter, index_select ---------------------------------------------------------------
namespace {

// PyTorch's scatter/gather shape rule: index.size(k) <= source.size(k) for every k (when a
// source is given) and index.size(k) <= self.size(k) for k != dim.
void check_index_shape(const char* op, const Tensor& self, int64_t dim, const Tensor& index, const Tensor* source,
                       const char* self_name) {
  const Tensor s = at_least_1d(self), i = at_least_1d(index);
  KEEL_CHECK(index.dtype() == DType::i64, "[", op, "] index must be int64, got ", dtype_name(index.dtype()));
  KEEL_CHECK(s.dim() == i.dim(), "[", op, "] index of shape ", index.shape(), " must have the rank of ", self_name,
             " of shape ", self.shape());
  for (int64_t k = 0; k < i.dim(); ++k) {
    KEEL_CHECK(k == dim || i.shape()[k] <= s.shape()[k], "[", op, "] index of shape ", index.shape(),
               " is larger than ", self_name, " of shape ", self.shape(), " in dim ", k, " (only dim ", dim,
               " may be larger)");
  }
  if (source != nullptr) {
    const Tensor src = at_least_1d(*source);
    KEEL_CHECK(src.dim() == i.dim(), "[", op, "] source of shape ", source->shape(), " must have the rank of index ",
               index.shape());
    for (int64_t k = 0; k < i.dim(); ++k) {
      KEEL_CHECK(i.shape()[k] <= src.shape()[k], "[", op, "] index of shape ", index.shape(),
                 " is larger than source of shape ", source->shape(), " in dim ", k);
    }
  }
}

Tensor& scatter_impl(const char* op, Tensor& self, int64_t dim, const Tensor& index, const Tensor& source,
                     bool accumulate) {
  check_defined(op, self, "self");
  check_defined(op, index, "index");
  check_defined(op, source, "source");
  check_same_device(op, self, index, "index");
  check_same_device(op, self, source, "source");
  const int64_t d = wrap_dim(dim, self.dim(), op);
  KEEL_CHECK(source.dtype() == self.dtype(), "[", op, "] source has dtype ", dtype_name(source.dtype()),
             " but self has dtype ", dtype_name(self.dtype()), "; they must match");
  check_index_shape(op, self, d, index, &source, "self");
  check_no_internal_overlap(self, op);
  if (index.numel() > 0) {
    // An index or source that shares memory with self is read in full before self is written
    // (even the very same view: scatter writes element index[i], not element i).
    auto unaliased = [&self](const Tensor& t) { return t.storage() == self.storage() ? t.clone() : t; };
    const Tensor s = at_least_1d(self), i = at_least_1d(unaliased(index)), src = at_least_1d(unaliased(source));
    if (self.is_cuda()) cuda::scatter(s, d, i, src, accumulate);
    else cpu::scatter(s, d, i, src, accumulate);
  }
  self.bump_version();
  return self;
}

}  // namespace

namespace {
Tensor gather_forward(const Tensor& x, int64_t dim, const Tensor& index) {
  check_defined("gather", x, "input");
  check_defined("gather", index, "index");
  check_same_device("gather", x, index, "index");
  const int64_t d = wrap_dim(dim, x.dim(), "gather");
  check_index_shape("gather", x, d, index, nullptr, "input");
  Tensor out = empty(index.shape(), x.options());
  if (out.numel() == 0) return out;
  const Tensor o = at_least_1d(out), xs = at_least_1d(x), i = at_least_1d(index);
  if (x.is_cuda()) cuda::gather(o, xs, d, i);
  else cpu::gather(o, xs, d, i);
  return out;
}

Tensor& scatter_forward_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& source) {
  return scatter_impl("scatter_", self, dim, index, source, false);
}

Tensor& scatter_add_forward_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& source) {
  return scatter_impl("scatter_add_", self, dim, index, source, true);
}

Tensor scatter_forward(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source) {
  check_defined("scatter", self, "self");
  Tensor out = self.clone();
  return scatter_impl("scatter", out, dim, index, source, false);
}

Tensor scatter_value_forward(const Tensor& self, int64_t dim, const Tensor& index, const Scalar& value) {
  check_defined("scatter", self, "self");
  check_defined("scatter", index, "index");
  Tensor out = self.clone();
  // The value as a 0-D tensor of self's dtype, broadcast over index's shape.
  const Tensor source = scalar_tensor(value, self.dtype(), self.device()).expand(index.shape());
  return scatter_impl("scatter", out, dim, index, source, false);
}

Tensor scatter_add_forward(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source) {
  check_defined("scatter_add", self, "self");
  Tensor out = self.clone();
  return scatter_impl("scatter_add", out, dim, index, source, true);
}

Tensor index_select_forward(const Tensor& x, int64_t dim, const Tensor& index) {
  check_defined("index_select", x, "input");
  check_defined("index_select", index, "index");
  check_same_device("index_select", x, index, "index");
  KEEL_CHECK(index.dtype() == DType::i64 || index.dtype() == DType::i32,
             "[index_select] index must be int64 or int32, got ", dtype_name(index.dtype()));
  KEEL_CHECK(index.dim() <= 1, "[index_select] index must be 0-D or 1-D, got shape ", index.shape());
  const int64_t d = wrap_dim(dim, x.dim(), "index_select");
  if (x.dim() == 0) {
    // A 0-D input: the only valid index is 0, and the result stays 0-D.
    KEEL_CHECK(index.numel() == 1, "[index_select] a 0-D input takes exactly one index, got shape ", index.shape());
    return index_select_forward(x.view({1}), 0, index.view({1})).view({});
  }
  const Tensor flat_index = index.view({index.numel()});
  Shape out_shape = x.shape();
  out_shape[d] = flat_index.numel();
  Tensor out = empty(out_shape, x.options());
  if (flat_index.numel() == 0) return out;
  // With zero-size other dims the kernel still checks the indices, then copies nothing.
  if (x.is_cuda()) cuda::index_select(out, x, d, flat_index);
  else cpu::index_select(out, x, d, flat_index);
  return out;
}

}  // namespace

// Backward:  gather: dx = scatter_add(zeros, dim, index, dy)
//   scatter(self, index, src): dself = dy with the scattered positions zeroed, dsrc = gather(dy)
//   scatter_add: dself = dy, dsrc = gather(dy)      index_select: dx = dy added back at index
namespace {
using autograd::OpRecord;
using autograd::TensorList;
using autograd::VjpArgs;

// The gradient of a source larger than its index: gather(dy) padded with zeros to the source's shape.
Tensor gather_to_source(const Tensor& g, int64_t dim, const Tensor& index, const Shape& source_shape) {
  Tensor picked = gather(g, dim, index);
  for (int64_t k = 0; k < picked.dim(); ++k) {
    const int64_t missing = source_shape[k] - picked.shape()[k];
    if (missing == 0) continue;
    Shape pad_shape = picked.shape();
    pad_shape[k] = missing;
    picked = cat({picked, zeros(pad_shape, picked.options())}, k);
  }
  return picked;
}

Tensor scatter_recorded(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source, bool accumulate) {
  OpRecord record(accumulate ? "scatter_add" : "scatter", self, source);
  Tensor out = accumulate ? scatter_add_forward(self, dim, index, source) : scatter_forward(self, dim, index, source);
  if (record) {
    const int64_t d = self.dim() == 0 ? 0 : wrap_dim(dim, self.dim(), "scatter");
    record.finish({out}, {index}, [d, accumulate, source_shape = source.shape()](const VjpArgs& a) {
      const Tensor &g = a.grad(), &index = a.saved[0];
      return TensorList{a.needs(0) ? (accumulate ? g : scatter(g, d, index, 0)) : Tensor(),
                        a.needs(1) ? gather_to_source(g, d, index, source_shape) : Tensor()};
    });
  }
  return out;
}
}  // namespace

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  OpRecord record("gather", x);
  record.trace_attr("dim", dim);
  record.trace_attr("index", index);
  Tensor out = gather_forward(x, dim, index);
  if (record) {
    const int64_t d = x.dim() == 0 ? 0 : wrap_dim(dim, x.dim(), "gather");
    record.finish({out}, {index}, [d, shape = x.shape()](const VjpArgs& a) {
      return TensorList{scatter_add(zeros(shape, a.grad().options()), d, a.saved[0], a.grad())};
    });
  }
  return out;
}

Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source) {
  return scatter_recorded(self, dim, index, source, false);
}

Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source) {
  return scatter_recorded(self, dim, index, source, true);
}

Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Scalar& value) {
  OpRecord record("scatter", self);
  Tensor out = scatter_value_forward(self, dim, index, value);
  if (record) {
    const int64_t d = self.dim() == 0 ? 0 : wrap_dim(dim, self.dim(), "scatter");
    record.finish({out}, {index}, [d](const VjpArgs& a) { return TensorList{scatter(a.grad(), d, a.saved[0], 0)}; });
  }
  return out;
}

namespace {
// scatter_ / scatter_add_: recorded out of place when autograd needs it, else the kernel in place.
Tensor& scatter_in_place(const char* op, Tensor& self, int64_t dim, const Tensor& index, const Tensor& source,
                         bool accumulate) {
  if (autograd::in_place_records(op, self, source)) {
    return autograd::in_place_with_history(op, self, [&](const Tensor& old) {
      return scatter_recorded(old, dim, autograd::operand_before_write(index, self, old),
                              autograd::operand_before_write(source, self, old), accumulate);
    });
  }
  return accumulate ? scatter_add_forward_(self, dim, index, source) : scatter_forward_(self, dim, index, source);
}
}  // namespace

Tensor& scatter_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& source) {
  return scatter_in_place("scatter_", self, dim, index, source, false);
}

Tensor& scatter_add_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& source) {
  return scatter_in_place("scatter_add_", self, dim, index, source, true);
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  OpRecord record("index_select", x);
  record.trace_attr("dim", dim);
  record.trace_attr("index", index);
  Tensor out = index_select_forward(x, dim, index);
  if (record) {
    const int64_t d = x.dim() == 0 ? 0 : wrap_dim(dim, x.dim(), "index_select");
    record.finish({out}, {index}, [d, shape = x.shape()](const VjpArgs& a) {
      const Tensor& g = a.grad();
      if (shape.empty()) return TensorList{g.reshape({})};
      // index_add as scatter_add: the index repeated along every other dim of dy.
      Shape index_shape(g.dim(), 1);
      index_shape[d] = g.shape()[d];
      const Tensor spread = a.saved[0].to(DType::i64).reshape(index_shape).expand(g.shape());
      return TensorList{scatter_add(zeros(shape, g.options()), d, spread, g)};
    });
  }
  return out;
}

// ---- masked_fill ------------------------------------------------------------------------------------
Tensor masked_fill(const Tensor& x, const Tensor& mask, const Scalar& value) {
  check_defined("masked_fill", x, "input");
  check_defined("masked_fill", mask, "mask");
  KEEL_CHECK(mask.dtype() == DType::bool_, "[masked_fill] mask must be bool, got ", dtype_name(mask.dtype()));
  check_same_device("masked_fill", x, mask, "mask");
  broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  // The value keeps x's dtype (converted as copy_ converts), so where() returns x's dtype.
  return where(mask, scalar_tensor(value, x.dtype(), x.device()), x);
}

Tensor& masked_fill_(Tensor& x, const Tensor& mask, const Scalar& value) {
  check_defined("masked_fill_", x, "input");
  check_defined("masked_fill_", mask, "mask");
  KEEL_CHECK(mask.dtype() == DType::bool_, "[masked_fill_] mask must be bool, got ", dtype_name(mask.dtype()));
  check_same_device("masked_fill_", x, mask, "mask");
  const Shape shape = broadcast_shapes(x.shape(), mask.shape(), "masked_fill_");
  KEEL_CHECK(shape == x.shape(), "[masked_fill_] mask of shape ", mask.shape(),
             " does not broadcast to the shape of the input ", x.shape());
  check_no_internal_overlap(x, "masked_fill_");
  if (autograd::in_place_records("masked_fill_", x))
    return autograd::in_place_with_history("masked_fill_", x, [&](const Tensor& old) {
      return masked_fill(old, mask, value);
    });
  x.copy_(where(mask, scalar_tensor(value, x.dtype(), x.device()), x));
  return x;
}

// ---- one_hot --------------------------------------------------------------------------------------
Tensor one_hot(const Tensor& indices, int64_t num_classes) {
  check_defined("one_hot", indices, "indices");
  KEEL_CHECK(indices.dtype() == DType::i64, "[one_hot] indices must be int64, got ",
             dtype_name(indices.dtype()));
  KEEL_CHECK(num_classes >= -1, "[one_hot] num_classes must be -1 (infer) or non-negative, got ", num_classes);
  // The class range is checked on the host (as PyTorch does on the CPU).
  const Tensor host = indices.cpu().contiguous();
  const int64_t* values = host.numel() > 0 ? host.data_ptr<int64_t>() : nullptr;
  int64_t lowest = std::numeric_limits<int64_t>::max(), highest = std::numeric_limits<int64_t>::min();
  for (int64_t i = 0; i < host.numel(); ++i) {
    lowest = std::min(lowest, values[i]);
    highest = std::max(highest, values[i]);
  }
  if (num_classes == -1) {
    KEEL_CHECK(host.numel() > 0, "[one_hot] cannot infer num_classes from an empty tensor (shape ",
               indices.shape(), "); pass num_classes");
    num_classes = highest + 1;
  }
  if (host.numel() > 0) {
    KEEL_CHECK(lowest >= 0, "[one_hot] class values must be non-negative, got ", lowest);
    KEEL_CHECK(highest < num_classes, "[one_hot] class values must be smaller than num_classes = ", num_classes,
               ", got ", highest);
  }
  Shape shape = indices.shape();
  shape.push_back(num_classes);
  Tensor out = zeros(shape, {DType::i64, indices.device()});
  if (indices.numel() == 0) return out;
  const Tensor index = indices.unsqueeze(-1);
  const Tensor ones_source = scalar_tensor(1, DType::i64, indices.device()).expand(index.shape());
  scatter_(out, -1, index, ones_source);
  return out;
}

// ---- tril and triu ----------------------------------------------------------------------------------
namespace {

// Keeps x[..., i, j] where lower ? j - i <= diagonal : j - i >= diagonal; zero elsewhere.
Tensor triangle(const char* op, const Tensor& x, int64_t diagonal, bool lower) {
  check_defined(op, x, "input");
  KEEL_CHECK(x.dim() >= 2, "[", op, "] expects a tensor with at least 2 dims, got shape ", x.shape());
  const int64_t rows = x.shape()[x.dim() - 2], cols = x.shape()[x.dim() - 1];
  // The mask is rows x cols bools built on the host and broadcast over the batch dims.
  Tensor mask = empty({rows, cols}, {DType::bool_, Device::cpu()});
  bool* keep = rows * cols > 0 ? mask.data_ptr<bool>() : nullptr;
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) keep[i * cols + j] = lower ? j - i <= diagonal : j - i >= diagonal;
  }
  if (!x.is_cpu()) mask = mask.to(x.device());
  return where(mask, x, scalar_tensor(0, x.dtype(), x.device()));
}

}  // namespace

Tensor tril(const Tensor& x, int64_t diagonal) { return triangle("tril", x, diagonal, true); }
Tensor triu(const Tensor& x, int64_t diagonal) { return triangle("triu", x, diagonal, false); }

}  // namespace keel

namespace keel {

Tensor slice_scatter(const Tensor& base, const Tensor& src, int64_t dim, int64_t start, int64_t end, int64_t step) {
  check_defined("slice_scatter", base, "base");
  check_defined("slice_scatter", src, "src");
  check_same_device("slice_scatter", base, src, "src");
  autograd::OpRecord record("slice_scatter", base, src);
  Tensor out = base.clone();
  Tensor window = out.slice(dim, start, end, step);
  KEEL_CHECK(window.shape() == src.shape(), "[slice_scatter] src of shape ", src.shape(), " does not match the slice ",
             window.shape(), " of base ", base.shape(), " (dim ", dim, ", ", start, ":", end, ":", step, ")");
  window.copy_(src);
  if (record) {
    record.finish({out}, {}, [dim, start, end, step, src_meta = src.shape()](const autograd::VjpArgs& a) {
      const Tensor& g = a.grad();
      return autograd::TensorList{
          a.needs(0) ? slice_scatter(g, zeros(src_meta, g.options()), dim, start, end, step) : Tensor(),
          a.needs(1) ? g.slice(dim, start, end, step) : Tensor()};
    });
  }
  return out;
}

}  // namespace keel
