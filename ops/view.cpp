// The view methods of Tensor with their backward rules. The geometry (which strides and offset
// a view gets) is core/tensor.cpp's; this file adds the vjps (DESIGN.md §2):
//
//   view / reshape / squeeze / unsqueeze:  dx = reshape(dy, x.shape)
//   permute(p):                            dx = permute(dy, p^-1)
//   transpose(a, b):                       dx = transpose(dy, a, b)
//   expand(shape):                         dx = sum_to_size(dy, x.shape)
//   slice / select:                        dx = slice_scatter(zeros(x.shape), dy, ...)
//   as_strided:                            dx = dy scatter-added at the storage positions it viewed
//   alias:                                 dx = dy
#include <numeric>

#include "keel/autograd/record.h"
#include "keel/ops/factory.h"
#include "keel/ops/reduce.h"
#include "keel/ops/shape.h"

namespace keel {

using autograd::OpRecord;
using autograd::TensorList;
using autograd::VjpArgs;

namespace {
// The vjp of every view that only regroups elements: reshape the gradient back.
void record_reshape(OpRecord& record, const Tensor& out, const Shape& input_shape) {
  record.finish({out}, {}, [input_shape](const VjpArgs& a) { return TensorList{a.grad().reshape(input_shape)}; });
}
}  // namespace

Tensor Tensor::view(Shape shape) const {
  OpRecord record("view", *this);
  Tensor out = view_impl(std::move(shape));
  if (record) record_reshape(record, out, this->shape());
  if (record.records_grad()) autograd::mark_view_recorded(out);
  return out;
}

Tensor Tensor::reshape(Shape shape) const {
  OpRecord record("reshape", *this);
  Tensor out = reshape_impl(std::move(shape));
  if (record) record_reshape(record, out, this->shape());
  if (record.records_grad()) autograd::mark_view_recorded(out);
  return out;
}

Tensor Tensor::squeeze() const {
  OpRecord record("squeeze", *this);
  Tensor out = squeeze_impl();
  if (record) record_reshape(record, out, shape());
  if (record.records_grad()) autograd::mark_view_recorded(out);
  return out;
}

Tensor Tensor::squeeze(int64_t dim) const {
  OpRecord record("squeeze", *this);
  Tensor out = squeeze_impl(dim);
  if (record) record_reshape(record, out, shape());
  if (record.records_grad()) autograd::mark_view_recorded(out);
  return out;
}

Tensor Tensor::unsqueeze(int64_t dim) const {
  OpRecord record("unsqueeze", *this);
  Tensor out = unsqueeze_impl(dim);
  if (record) record_reshape(record, out, shape());
  if (record.records_grad()) autograd::mark_view_recorded(out);
  return out;
}

Tensor Tensor::permute(std::vector<int64_t> dims) const {
  OpRecord record("permute", *this);
  record.trace_attr("dims", dims);
  Tensor out = permute_impl(dims);
  if (record) {
    std::vector<int64_t> inverse(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) inverse[wrap_dim(dims[i], dim(), "permute")] = static_cast<int64_t>(i);
    record.finish({out}, {}, [inverse](const VjpArgs& a) { return TensorList{a.grad().permute(inverse)}; });
  }
  if (record.records_grad()) autograd::mark_view_recorded(out);
  return out;
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  OpRecord record("transpose", *this);
  record.trace_attr("dim0", dim0);
  record.trace_attr("dim1", dim1);
  Tensor out = transpose_impl(dim0, dim1);
  if (record) {
    record.finish({out}, {}, [dim0, dim1](const VjpArgs& a) { return TensorList{a.grad().transpose(dim0, dim1)}; });
  }
  if (record.records_grad()) autograd::mark_view_recorded(out);
  return out;
}

Tensor Tensor::expand(Shape shape) const {
  OpRecord record("expand", *this);
  Tensor out = expand_impl(std::move(shape));
  if (record) {
    record.finish({out}, {}, [input_shape = this->shape()](const VjpArgs& a) {
      return TensorList{sum_to_size(a.grad(), input_shape)};
    });
  }
  if (record.records_grad()) autograd::mark_view_recorded(out);
  return out;
}

Tensor Tensor::slice(int64_t dim, int64_t start, int64_t end, int64_t step) const {
  OpRecord record("slice", *this);
  record.trace_attr("dim", dim);
  record.trace_attr("start", start);
  record.trace_attr("end", end);
  record.trace_attr("step", step);
  Tensor out = slice_impl(dim, start, end, step);
  if (record) {
    record.finish({out}, {}, [input_shape = shape(), dim, start, end, step](const VjpArgs& a) {
      return TensorList{slice_scatter(zeros(input_shape, a.grad().options()), a.grad(), dim, start, end, step)};
    });
  }
  if (record.records_grad()) autograd::mark_view_recorded(out);
  return out;
}

Tensor Tensor::select(int64_t dim, int64_t index) const {
  OpRecord record("select", *this);
  record.trace_attr("dim", dim);
  record.trace_attr("index", index);
  Tensor out = select_impl(dim, index);
  if (record) {
    const int64_t d = wrap_dim(dim, this->dim(), "select");
    const int64_t i = index < 0 ? index + shape()[d] : index;
    record.finish({out}, {}, [input_shape = shape(), d, i](const VjpArgs& a) {
      return TensorList{slice_scatter(zeros(input_shape, a.grad().options()), a.grad().unsqueeze(d), d, i, i + 1)};
    });
  }
  if (record.records_grad()) autograd::mark_view_recorded(out);
  return out;
}

Tensor Tensor::alias() const {
  OpRecord record("alias", *this);
  Tensor out = alias_impl();
  if (record) record.finish({out}, {}, [](const VjpArgs& a) { return TensorList{a.grad()}; });
  if (record.records_grad()) autograd::mark_view_recorded(out);
  return out;
}

Tensor Tensor::as_strided(Shape shape, Shape strides, int64_t offset) const {
  OpRecord record("as_strided", *this);
  Tensor out = as_strided_impl(shape, strides, offset);
  if (record) {
    // The gradient lives on the storage: add dy at the positions the output viewed, then read it
    // back through the input's geometry. (An input whose own elements overlap, an expanded
    // view, would see the sum at each shared position.)
    auto last_position = [](const Shape& sizes, const Shape& steps, int64_t start) {
      int64_t last = start;
      for (size_t i = 0; i < sizes.size(); ++i) last += (sizes[i] - 1) * steps[i];
      return last;
    };
    const int64_t low = std::min(offset, this->offset());
    const int64_t high = std::max(numel() ? last_position(this->shape(), this->strides(), this->offset()) : low,
                                  out.numel() ? last_position(shape, strides, offset) : low);
    record.finish({out}, {}, [=, in_shape = this->shape(), in_strides = this->strides(), in_offset = this->offset()](
                                 const VjpArgs& a) {
      const int64_t span = high - low + 1;
      Tensor positions = arange(0, span, 1, {DType::i64, a.grad().device()}).as_strided(shape, strides, offset - low);
      Tensor storage_grad =
          scatter_add(zeros({span}, a.grad().options()), 0, positions.reshape({-1}), a.grad().reshape({-1}));
      return TensorList{storage_grad.as_strided(in_shape, in_strides, in_offset - low)};
    });
  }
  if (record.records_grad()) autograd::mark_view_recorded(out);
  return out;
}

}  // namespace keel
