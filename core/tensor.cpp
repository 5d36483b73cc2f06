// Tensor metadata and views: everything here touches shapes and strides only, never data.
#include "keel/core/tensor.h"

#include <algorithm>
#include <numeric>
#include <optional>

namespace keel {

TensorImpl& Tensor::impl() const {
  KEEL_CHECK(impl_ != nullptr, "[tensor] the tensor is undefined (default-constructed)");
  return *impl_;
}

int64_t shape_numel(const Shape& shape) {
  int64_t count = 1;
  for (int64_t size : shape) count *= size;
  return count;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t running = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = running;
    running *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

std::string to_string(const Shape& shape) { return detail::shape_string(shape); }

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  const int64_t extent = std::max<int64_t>(ndim, 1);  // 0-D tensors accept dim 0 and -1
  KEEL_CHECK(dim >= -extent && dim < extent, "[", op, "] dim ", dim, " out of range for a ", ndim,
             "-D tensor (expected in [", -extent, ", ", extent - 1, "])");
  return dim < 0 ? dim + extent : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t ndim = std::max(a.size(), b.size());
  Shape result(ndim);
  for (size_t i = 0; i < ndim; ++i) {
    const int64_t size_a = i < ndim - a.size() ? 1 : a[i - (ndim - a.size())];
    const int64_t size_b = i < ndim - b.size() ? 1 : b[i - (ndim - b.size())];
    KEEL_CHECK(size_a == size_b || size_a == 1 || size_b == 1, "[", op, "] shapes ", a, " and ", b,
               " do not broadcast (dim ", i, ": ", size_a, " vs ", size_b, ")");
    result[i] = size_a == 1 ? size_b : size_a;
  }
  return result;
}

static void check_shape(const Shape& shape, const char* op) {
  for (int64_t size : shape)
    KEEL_CHECK(size >= 0, "[", op, "] negative size in shape ", shape);
}

Tensor empty(Shape shape, TensorOptions options) {
  check_shape(shape, "empty");
  auto impl = std::make_shared<TensorImpl>();
  const size_t nbytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(options.dtype);
  impl->storage = std::make_shared<Storage>(nbytes, options.device);
  impl->strides = contiguous_strides(shape);
  impl->shape = std::move(shape);
  impl->dtype = options.dtype;
  return Tensor(std::move(impl));
}

Tensor from_blob(void* data, Shape shape, Shape strides, TensorOptions options, Deleter deleter) {
  check_shape(shape, "from_blob");
  KEEL_CHECK(strides.size() == shape.size(), "[from_blob] shape ", shape, " and strides ", strides,
             " have different lengths");
  KEEL_CHECK(data != nullptr || shape_numel(shape) == 0, "[from_blob] null data for shape ", shape);
  int64_t extent = 0;  // highest element index reachable, to size the storage
  for (size_t i = 0; i < shape.size(); ++i) {
    KEEL_CHECK(strides[i] >= 0, "[from_blob] negative stride in ", strides);
    if (shape[i] > 0) extent += (shape[i] - 1) * strides[i];
  }
  const size_t nbytes = shape_numel(shape) == 0 ? 0 : static_cast<size_t>(extent + 1) * dtype_size(options.dtype);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(data, nbytes, options.device, std::move(deleter));
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->dtype = options.dtype;
  return Tensor(std::move(impl));
}

Tensor from_blob(void* data, Shape shape, TensorOptions options, Deleter deleter) {
  Shape strides = contiguous_strides(shape);
  return from_blob(data, std::move(shape), std::move(strides), options, std::move(deleter));
}

int64_t Tensor::size(int64_t dim) const { return shape()[wrap_dim(dim, this->dim(), "size")]; }
int64_t Tensor::stride(int64_t dim) const { return strides()[wrap_dim(dim, this->dim(), "stride")]; }
int64_t Tensor::numel() const { return shape_numel(shape()); }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  const Shape& sizes = shape();
  const Shape& steps = strides();
  for (size_t i = sizes.size(); i-- > 0;) {
    if (sizes[i] == 0) return true;
    if (sizes[i] != 1 && steps[i] != expected) return false;
    expected *= sizes[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  auto* base = static_cast<char*>(storage()->data());
  return base ? base + offset() * static_cast<int64_t>(itemsize()) : nullptr;
}

// A view: same storage, new shape/strides/offset.
static Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

Tensor Tensor::alias() const { return make_view(*this, shape(), strides(), offset()); }

Tensor Tensor::as_strided(Shape new_shape, Shape new_strides, int64_t new_offset) const {
  check_shape(new_shape, "as_strided");
  KEEL_CHECK(new_shape.size() == new_strides.size(), "[as_strided] shape ", new_shape,
             " and strides ", new_strides, " have different lengths");
  KEEL_CHECK(new_offset >= 0, "[as_strided] negative offset ", new_offset);
  if (shape_numel(new_shape) > 0) {
    int64_t last = new_offset;
    for (size_t i = 0; i < new_shape.size(); ++i) {
      KEEL_CHECK(new_strides[i] >= 0, "[as_strided] negative stride in ", new_strides);
      last += (new_shape[i] - 1) * new_strides[i];
    }
    KEEL_CHECK(static_cast<size_t>(last + 1) * itemsize() <= storage()->nbytes(), "[as_strided] shape ",
               new_shape, " with strides ", new_strides, " and offset ", new_offset,
               " reaches past the storage of ", storage()->nbytes() / itemsize(), " elements");
  }
  return make_view(*this, std::move(new_shape), std::move(new_strides), new_offset);
}

// Resolves one -1 in a requested shape against numel.
static Shape infer_shape(Shape requested, int64_t numel, const Shape& original, const char* op) {
  int64_t known = 1;
  int infer_at = -1;
  for (size_t i = 0; i < requested.size(); ++i) {
    if (requested[i] == -1) {
      KEEL_CHECK(infer_at < 0, "[", op, "] only one dimension can be -1, got ", requested);
      infer_at = static_cast<int>(i);
    } else {
      KEEL_CHECK(requested[i] >= 0, "[", op, "] invalid size in shape ", requested);
      known *= requested[i];
    }
  }
  if (infer_at >= 0) {
    KEEL_CHECK(known != 0 && numel % known == 0, "[", op, "] shape ", requested,
               " is invalid for input of shape ", original, " (", numel, " elements)");
    requested[infer_at] = numel / known;
  }
  KEEL_CHECK(shape_numel(requested) == numel, "[", op, "] shape ", requested,
             " is invalid for input of shape ", original, " (", numel, " elements)");
  return requested;
}

// Strides for viewing (shape, strides) as new_shape without copying, or empty if impossible.
// Same algorithm as PyTorch's computeStride: each run of old dims that is contiguous in memory
// can be re-split into any new dims whose product matches.
static std::optional<Shape> view_strides(const Shape& shape, const Shape& strides, const Shape& new_shape) {
  Shape new_strides(new_shape.size());
  if (shape.empty()) return Shape(new_shape.size(), 1);  // a 0-D tensor views as any all-ones shape
  if (shape_numel(shape) == 0) return contiguous_strides(new_shape);
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t tensor_d = static_cast<int64_t>(shape.size()) - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= shape[tensor_d];
    if (tensor_d == 0 || (shape[tensor_d - 1] != 1 && strides[tensor_d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        new_strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (tensor_d > 0) {
        chunk_base_stride = strides[tensor_d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

Tensor Tensor::view(Shape new_shape) const {
  new_shape = infer_shape(std::move(new_shape), numel(), shape(), "view");
  auto new_strides = view_strides(shape(), strides(), new_shape);
  KEEL_CHECK(new_strides.has_value(), "[view] cannot view a tensor of shape ", shape(), " and strides ",
             strides(), " as ", new_shape, " without copying; use reshape");
  return make_view(*this, std::move(new_shape), std::move(*new_strides), offset());
}

Tensor Tensor::reshape(Shape new_shape) const {
  new_shape = infer_shape(std::move(new_shape), numel(), shape(), "reshape");
  if (auto new_strides = view_strides(shape(), strides(), new_shape)) {
    return make_view(*this, std::move(new_shape), std::move(*new_strides), offset());
  }
  return contiguous().view(std::move(new_shape));
}

Tensor Tensor::permute(std::vector<int64_t> dims) const {
  const int64_t ndim = dim();
  KEEL_CHECK(static_cast<int64_t>(dims.size()) == ndim, "[permute] got ", dims.size(),
             " dims for a tensor of shape ", shape());
  Shape new_shape(ndim), new_strides(ndim);
  std::vector<bool> seen(ndim, false);
  for (int64_t i = 0; i < ndim; ++i) {
    const int64_t source = wrap_dim(dims[i], ndim, "permute");
    KEEL_CHECK(!seen[source], "[permute] dim ", source, " repeated in ", Shape(dims));
    seen[source] = true;
    new_shape[i] = shape()[source];
    new_strides[i] = strides()[source];
  }
  return make_view(*this, std::move(new_shape), std::move(new_strides), offset());
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  const int64_t ndim = dim();
  if (ndim == 0) {
    wrap_dim(dim0, ndim, "transpose");
    wrap_dim(dim1, ndim, "transpose");
    return alias();
  }
  dim0 = wrap_dim(dim0, ndim, "transpose");
  dim1 = wrap_dim(dim1, ndim, "transpose");
  Shape new_shape = shape(), new_strides = strides();
  std::swap(new_shape[dim0], new_shape[dim1]);
  std::swap(new_strides[dim0], new_strides[dim1]);
  return make_view(*this, std::move(new_shape), std::move(new_strides), offset());
}

Tensor Tensor::t() const {
  KEEL_CHECK(dim() <= 2, "[t] expects a tensor with <= 2 dims, got shape ", shape());
  return dim() < 2 ? alias() : transpose(0, 1);
}

Tensor Tensor::slice(int64_t dim_, int64_t start, int64_t end, int64_t step) const {
  KEEL_CHECK(dim() > 0, "[slice] cannot slice a 0-D tensor");
  const int64_t d = wrap_dim(dim_, dim(), "slice");
  KEEL_CHECK(step > 0, "[slice] step must be positive, got ", step);
  const int64_t size = shape()[d];
  auto clamp_index = [size](int64_t index) {
    if (index < 0) index += size;
    return std::clamp<int64_t>(index, 0, size);
  };
  start = clamp_index(start);
  end = std::max(clamp_index(end), start);
  Shape new_shape = shape(), new_strides = strides();
  new_shape[d] = (end - start + step - 1) / step;
  new_strides[d] = strides()[d] * step;
  const int64_t new_offset = offset() + (new_shape[d] > 0 ? start * strides()[d] : 0);
  return make_view(*this, std::move(new_shape), std::move(new_strides), new_offset);
}

Tensor Tensor::narrow(int64_t dim_, int64_t start, int64_t length) const {
  KEEL_CHECK(dim() > 0, "[narrow] cannot narrow a 0-D tensor");
  const int64_t d = wrap_dim(dim_, dim(), "narrow");
  const int64_t size = shape()[d];
  if (start < 0) start += size;
  KEEL_CHECK(start >= 0 && length >= 0 && start + length <= size, "[narrow] start ", start,
             " and length ", length, " out of range for dim ", d, " of shape ", shape());
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t dim_, int64_t index) const {
  KEEL_CHECK(dim() > 0, "[select] cannot select from a 0-D tensor");
  const int64_t d = wrap_dim(dim_, dim(), "select");
  const int64_t size = shape()[d];
  KEEL_CHECK(index >= -size && index < size, "[select] index ", index, " out of range for dim ", d,
             " of shape ", shape());
  if (index < 0) index += size;
  Shape new_shape = shape(), new_strides = strides();
  const int64_t new_offset = offset() + index * strides()[d];
  new_shape.erase(new_shape.begin() + d);
  new_strides.erase(new_strides.begin() + d);
  return make_view(*this, std::move(new_shape), std::move(new_strides), new_offset);
}

Tensor Tensor::expand(Shape target) const {
  const int64_t ndim = dim();
  const int64_t new_ndim = static_cast<int64_t>(target.size());
  KEEL_CHECK(new_ndim >= ndim, "[expand] cannot expand shape ", shape(), " to ", target,
             " (fewer dims)");
  Shape new_strides(new_ndim);
  for (int64_t i = new_ndim - 1; i >= 0; --i) {
    const int64_t source = i - (new_ndim - ndim);
    if (source >= 0) {
      const int64_t size = shape()[source];
      if (target[i] == -1) target[i] = size;
      KEEL_CHECK(target[i] == size || size == 1, "[expand] cannot expand shape ", shape(), " to ",
                 target, " (dim ", i, ": ", size, " -> ", target[i], ")");
      new_strides[i] = size == target[i] ? strides()[source] : 0;
    } else {
      KEEL_CHECK(target[i] >= 0, "[expand] size -1 not allowed in a new leading dim: ", target);
      new_strides[i] = 0;
    }
  }
  return make_view(*this, std::move(target), std::move(new_strides), offset());
}

Tensor Tensor::squeeze() const {
  Shape new_shape, new_strides;
  for (int64_t i = 0; i < dim(); ++i) {
    if (shape()[i] != 1) {
      new_shape.push_back(shape()[i]);
      new_strides.push_back(strides()[i]);
    }
  }
  return make_view(*this, std::move(new_shape), std::move(new_strides), offset());
}

Tensor Tensor::squeeze(int64_t dim_) const {
  const int64_t d = wrap_dim(dim_, dim(), "squeeze");
  if (dim() == 0 || shape()[d] != 1) return alias();
  Shape new_shape = shape(), new_strides = strides();
  new_shape.erase(new_shape.begin() + d);
  new_strides.erase(new_strides.begin() + d);
  return make_view(*this, std::move(new_shape), std::move(new_strides), offset());
}

Tensor Tensor::unsqueeze(int64_t dim_) const {
  const int64_t d = wrap_dim(dim_, dim() + 1, "unsqueeze");
  Shape new_shape = shape(), new_strides = strides();
  const int64_t stride = d < dim() ? strides()[d] * shape()[d] : 1;
  new_shape.insert(new_shape.begin() + d, 1);
  new_strides.insert(new_strides.begin() + d, stride);
  return make_view(*this, std::move(new_shape), std::move(new_strides), offset());
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  const int64_t start = wrap_dim(start_dim, dim(), "flatten");
  const int64_t end = wrap_dim(end_dim, dim(), "flatten");
  KEEL_CHECK(start <= end, "[flatten] start_dim ", start, " is after end_dim ", end);
  Shape new_shape(shape().begin(), shape().begin() + start);
  int64_t merged = 1;
  for (int64_t i = start; i <= end; ++i) merged *= shape()[i];
  new_shape.push_back(merged);
  new_shape.insert(new_shape.end(), shape().begin() + end + 1, shape().end());
  return reshape(std::move(new_shape));
}

Tensor Tensor::unflatten(int64_t dim_, Shape sizes) const {
  const int64_t d = wrap_dim(dim_, dim(), "unflatten");
  KEEL_CHECK(!sizes.empty(), "[unflatten] sizes must not be empty");
  sizes = infer_shape(std::move(sizes), shape()[d], {shape()[d]}, "unflatten");
  Shape new_shape(shape().begin(), shape().begin() + d);
  new_shape.insert(new_shape.end(), sizes.begin(), sizes.end());
  new_shape.insert(new_shape.end(), shape().begin() + d + 1, shape().end());
  return view(std::move(new_shape));
}

}  // namespace keel
