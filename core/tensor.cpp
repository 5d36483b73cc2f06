// Tensor metadata and views: everything here touches shapes and strides only, never data.
#include "keel/core/tensor.h"

#include <algorithm>
#include <numeric>
#include <optional>

namespace keel {

void Tensor::throw_undefined() { fail("[tensor] the tensor is undefined (default-constructed)"); }

// Sizes and strides come from users: every product and sum over them is checked, because
// signed overflow is undefined behaviour and a wrapped element count would size a storage far
// smaller than the shape claims (empty({1 << 40, 1 << 40}) used to allocate 0 bytes).
static int64_t checked_mul(int64_t a, int64_t b, const char* op, const Shape& shape) {
  int64_t result;
  KEEL_CHECK(!__builtin_mul_overflow(a, b, &result), "[", op, "] shape ", shape,
             " has too many elements (the count overflows int64)");
  return result;
}

// numel; 0 as soon as any size is 0 (the other sizes may then be anything non-negative).
static int64_t checked_numel(const Shape& shape, const char* op) {
  for (int64_t size : shape)
    if (size == 0) return 0;
  int64_t count = 1;
  for (int64_t size : shape) count = checked_mul(count, size, op, shape);
  return count;
}

int64_t shape_numel(const Shape& shape) { return checked_numel(shape, "numel"); }

Shape contiguous_strides(const Shape& shape) {
  // Unsigned wrap: only an empty tensor can overflow here (its numel is 0 but the sizes after the
  // zero may multiply past 2^63), and an empty tensor's strides are never used to address memory.
  Shape strides(shape.size());
  uint64_t running = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = static_cast<int64_t>(running);
    running *= static_cast<uint64_t>(std::max<int64_t>(shape[i], 1));
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

// Sizes non-negative and numel (and its byte count) representable; returns numel.
static int64_t check_shape(const Shape& shape, const char* op, size_t itemsize = 1) {
  for (int64_t size : shape)
    KEEL_CHECK(size >= 0, "[", op, "] negative size in shape ", shape);
  const int64_t numel = checked_numel(shape, op);
  checked_mul(numel, static_cast<int64_t>(itemsize), op, shape);
  return numel;
}

Tensor empty(Shape shape, TensorOptions options) {
  const int64_t numel = check_shape(shape, "empty", dtype_size(options.dtype));
  auto impl = std::make_shared<TensorImpl>();
  const size_t nbytes = static_cast<size_t>(numel) * dtype_size(options.dtype);
  impl->storage = std::make_shared<Storage>(nbytes, options.device);
  impl->strides = contiguous_strides(shape);
  impl->shape = std::move(shape);
  impl->dtype = options.dtype;
  return Tensor(std::move(impl));
}

Tensor from_blob(void* data, Shape shape, Shape strides, TensorOptions options, Deleter deleter) {
  const int64_t numel = check_shape(shape, "from_blob", dtype_size(options.dtype));
  KEEL_CHECK(strides.size() == shape.size(), "[from_blob] shape ", shape, " and strides ", strides,
             " have different lengths");
  KEEL_CHECK(data != nullptr || numel == 0, "[from_blob] null data for shape ", shape);
  // Elements reachable, to size the storage: 1 + sum (size - 1) * stride, in bytes.
  int64_t span = numel == 0 ? 0 : 1, reach = 0;
  bool representable = true;
  for (size_t i = 0; i < shape.size(); ++i) {
    KEEL_CHECK(strides[i] >= 0, "[from_blob] negative stride in ", strides);
    if (numel > 0)
      representable = representable && !__builtin_mul_overflow(shape[i] - 1, strides[i], &reach) &&
                      !__builtin_add_overflow(span, reach, &span);
  }
  int64_t nbytes = 0;
  representable = representable && !__builtin_mul_overflow(span, static_cast<int64_t>(dtype_size(options.dtype)), &nbytes);
  KEEL_CHECK(representable, "[from_blob] shape ", shape, " with strides ", strides,
             " spans more bytes than int64 can count");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(data, static_cast<size_t>(nbytes), options.device, std::move(deleter));
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
  impl->view_base = base.impl().view_base ? base.impl().view_base : base.impl_ptr();
  return Tensor(std::move(impl));
}

Tensor Tensor::alias_impl() const { return make_view(*this, shape(), strides(), offset()); }

Tensor Tensor::as_strided_impl(Shape new_shape, Shape new_strides, int64_t new_offset) const {
  const int64_t numel = check_shape(new_shape, "as_strided", itemsize());
  KEEL_CHECK(new_shape.size() == new_strides.size(), "[as_strided] shape ", new_shape,
             " and strides ", new_strides, " have different lengths");
  KEEL_CHECK(new_offset >= 0, "[as_strided] negative offset ", new_offset);
  for (int64_t stride : new_strides)
    KEEL_CHECK(stride >= 0, "[as_strided] negative stride in ", new_strides);
  if (numel > 0) {
    // Compared in elements, so that nothing here can overflow once each term is checked.
    const int64_t capacity = static_cast<int64_t>(storage()->nbytes() / itemsize());
    int64_t last = new_offset;
    bool fits = last < capacity;
    for (size_t i = 0; i < new_shape.size() && fits; ++i) {
      int64_t reach;
      fits = !__builtin_mul_overflow(new_shape[i] - 1, new_strides[i], &reach) &&
             !__builtin_add_overflow(last, reach, &last) && last < capacity;
    }
    KEEL_CHECK(fits, "[as_strided] shape ", new_shape, " with strides ", new_strides, " and offset ",
               new_offset, " reaches past the storage of ", capacity, " elements");
  }
  return make_view(*this, std::move(new_shape), std::move(new_strides), new_offset);
}

// Resolves one -1 in a requested shape against numel.
static Shape infer_shape(Shape requested, int64_t numel, const Shape& original, const char* op) {
  int infer_at = -1;
  Shape known_sizes = requested;  // the -1 counted as 1
  for (size_t i = 0; i < requested.size(); ++i) {
    if (requested[i] == -1) {
      KEEL_CHECK(infer_at < 0, "[", op, "] only one dimension can be -1, got ", requested);
      infer_at = static_cast<int>(i);
      known_sizes[i] = 1;
    } else {
      KEEL_CHECK(requested[i] >= 0, "[", op, "] invalid size in shape ", requested);
    }
  }
  const int64_t known = checked_numel(known_sizes, op);
  if (infer_at >= 0) {
    KEEL_CHECK(known != 0 && numel % known == 0, "[", op, "] shape ", requested,
               " is invalid for input of shape ", original, " (", numel, " elements)");
    requested[infer_at] = numel / known;
  }
  KEEL_CHECK(checked_numel(requested, op) == numel, "[", op, "] shape ", requested,
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

Tensor Tensor::view_impl(Shape new_shape) const {
  new_shape = infer_shape(std::move(new_shape), numel(), shape(), "view");
  auto new_strides = view_strides(shape(), strides(), new_shape);
  KEEL_CHECK(new_strides.has_value(), "[view] cannot view a tensor of shape ", shape(), " and strides ",
             strides(), " as ", new_shape, " without copying; use reshape");
  return make_view(*this, std::move(new_shape), std::move(*new_strides), offset());
}

Tensor Tensor::reshape_impl(Shape new_shape) const {
  new_shape = infer_shape(std::move(new_shape), numel(), shape(), "reshape");
  if (auto new_strides = view_strides(shape(), strides(), new_shape)) {
    return make_view(*this, std::move(new_shape), std::move(*new_strides), offset());
  }
  return contiguous().view_impl(std::move(new_shape));
}

Tensor Tensor::permute_impl(std::vector<int64_t> dims) const {
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

Tensor Tensor::transpose_impl(int64_t dim0, int64_t dim1) const {
  const int64_t ndim = dim();
  if (ndim == 0) {
    wrap_dim(dim0, ndim, "transpose");
    wrap_dim(dim1, ndim, "transpose");
    return alias_impl();
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

Tensor Tensor::slice_impl(int64_t dim_, int64_t start, int64_t end, int64_t step) const {
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
  // ceil((end - start) / step), written so that a huge step cannot overflow.
  new_shape[d] = end > start ? (end - start - 1) / step + 1 : 0;
  // stride * step can only overflow when at most one element is kept, where any stride is valid.
  if (__builtin_mul_overflow(strides()[d], step, &new_strides[d])) new_strides[d] = strides()[d];
  const int64_t new_offset = offset() + (new_shape[d] > 0 ? start * strides()[d] : 0);
  return make_view(*this, std::move(new_shape), std::move(new_strides), new_offset);
}

Tensor Tensor::narrow(int64_t dim_, int64_t start, int64_t length) const {
  KEEL_CHECK(dim() > 0, "[narrow] cannot narrow a 0-D tensor");
  const int64_t d = wrap_dim(dim_, dim(), "narrow");
  const int64_t size = shape()[d];
  if (start < 0) start += size;
  KEEL_CHECK(start >= 0 && start <= size && length >= 0 && length <= size - start, "[narrow] start ", start,
             " and length ", length, " out of range for dim ", d, " of shape ", shape());
  return slice(d, start, start + length);
}

Tensor Tensor::select_impl(int64_t dim_, int64_t index) const {
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

Tensor Tensor::expand_impl(Shape target) const {
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
      KEEL_CHECK(target[i] >= 0, "[expand] invalid size ", target[i], " in ", target, " for shape ", shape());
      KEEL_CHECK(target[i] == size || size == 1, "[expand] cannot expand shape ", shape(), " to ",
                 target, " (dim ", i, ": ", size, " -> ", target[i], ")");
      new_strides[i] = size == target[i] ? strides()[source] : 0;
    } else {
      KEEL_CHECK(target[i] >= 0, "[expand] size -1 not allowed in a new leading dim: ", target);
      new_strides[i] = 0;
    }
  }
  checked_numel(target, "expand");
  return make_view(*this, std::move(target), std::move(new_strides), offset());
}

Tensor Tensor::squeeze_impl() const {
  Shape new_shape, new_strides;
  for (int64_t i = 0; i < dim(); ++i) {
    if (shape()[i] != 1) {
      new_shape.push_back(shape()[i]);
      new_strides.push_back(strides()[i]);
    }
  }
  return make_view(*this, std::move(new_shape), std::move(new_strides), offset());
}

Tensor Tensor::squeeze_impl(int64_t dim_) const {
  const int64_t d = wrap_dim(dim_, dim(), "squeeze");
  if (dim() == 0 || shape()[d] != 1) return alias_impl();
  Shape new_shape = shape(), new_strides = strides();
  new_shape.erase(new_shape.begin() + d);
  new_strides.erase(new_strides.begin() + d);
  return make_view(*this, std::move(new_shape), std::move(new_strides), offset());
}

Tensor Tensor::unsqueeze_impl(int64_t dim_) const {
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
  for (int64_t i = start; i <= end; ++i) merged = checked_mul(merged, shape()[i], "flatten", shape());
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

// ---- memory overlap ------------------------------------------------------------------------------
void check_no_internal_overlap(const Tensor& out, const char* op) {
  for (int64_t d = 0; d < out.dim(); ++d) {
    KEEL_CHECK(out.shape()[d] <= 1 || out.strides()[d] != 0, "[", op,
               "] cannot write in place into a tensor of shape ", out.shape(), " with strides ", out.strides(),
               ": several elements share memory (an expanded view); clone() it first");
  }
}

// [first, last] element index a non-empty view can reach (strides are never negative in Keel).
static std::pair<int64_t, int64_t> element_span(const Tensor& t) {
  int64_t last = t.offset();
  for (int64_t d = 0; d < t.dim(); ++d) last += (t.shape()[d] - 1) * t.strides()[d];
  return {t.offset(), last};
}

Tensor unaliased_input(const Tensor& input, const Tensor& out) {
  if (input.storage() != out.storage() || input.numel() == 0 || out.numel() == 0) return input;
  if (input.offset() == out.offset() && input.shape() == out.shape() && input.strides() == out.strides())
    return input;  // element i is read and then written by the same iteration: safe
  const auto [in_first, in_last] = element_span(input);
  const auto [out_first, out_last] = element_span(out);
  // Disjoint address ranges cannot share an element. Overlapping ranges may (x[1:] and x[:-1])
  // or may not (x[0::2] and x[1::2]); a copy is always correct, and costs one pass.
  if (in_last < out_first || out_last < in_first) return input;
  return input.clone();
}

}  // namespace keel
