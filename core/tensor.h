#pragma once
// Tensor: a cheap, reference-counted handle to a strided view of a Storage.
//
//   element (i0, i1, ...) lives at  storage.data + (offset + sum_k i_k * strides[k]) * itemsize
//
// Copying a Tensor copies the handle, not the data (like torch.Tensor). Views (view, permute,
// slice, expand, ...) share storage with their base; writes through one are seen by the other.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "keel/core/device.h"
#include "keel/core/dtype.h"
#include "keel/core/error.h"
#include "keel/core/scalar.h"
#include "keel/core/storage.h"

namespace keel {

using Shape = std::vector<int64_t>;
class Tensor;

namespace autograd {
struct AutogradMeta;  // autograd/node.h: requires_grad, grad, grad_fn, hooks
class Node;
}  // namespace autograd

struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;       // in elements; 0 for broadcast (expanded) dimensions
  int64_t offset = 0;  // in elements, from the start of storage
  DType dtype = DType::f32;
  // Set on views: the tensor whose storage a view op viewed (the first non-view up the chain),
  // kept alive by the view. An in-place op through the view that autograd records rewrites the
  // base's history, and a view whose base changed takes its history from it (autograd/record.cpp).
  std::shared_ptr<TensorImpl> view_base;
  // Null until the tensor takes part in autograd (requires_grad_, or an op recorded it).
  std::shared_ptr<autograd::AutogradMeta> autograd;
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- metadata -------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& sizes() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t numel() const;
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  TensorOptions options() const { return {dtype(), device()}; }
  int64_t offset() const { return impl().offset; }
  size_t itemsize() const { return dtype_size(dtype()); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * itemsize(); }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  bool is_contiguous() const;
  bool is_cpu() const { return device().is_cpu(); }
  bool is_cuda() const { return device().is_cuda(); }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  TensorImpl& impl() const {
    if (impl_ == nullptr) [[unlikely]] throw_undefined();
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  // Bumps the storage's version counter: every in-place op calls it.
  void bump_version() const { impl().storage->bump_version(); }

  // ---- data access ------------------------------------------------------------------------
  // Pointer to the first element. data_ptr<T>() checks that T matches the dtype.
  void* raw_data() const;
  template <typename T> T* data_ptr() const {
    KEEL_CHECK(dtype_of_v<T> == dtype(), "[data_ptr] tensor has dtype ", dtype_name(dtype()),
               ", asked for ", dtype_name(dtype_of_v<T>));
    return static_cast<T*>(raw_data());
  }
  // The single element of a one-element tensor, converted to T (copied to the host if needed).
  template <typename T> T item() const { return item_scalar().to<T>(); }
  Scalar item_scalar() const;

  // ---- views (share storage; defined with their vjps in ops/view.cpp) -----------------------
  Tensor view(Shape shape) const;     // no copy; throws if the strides do not allow it
  Tensor reshape(Shape shape) const;  // a view when possible, otherwise a copy
  Tensor permute(std::vector<int64_t> dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;  // 2-D transpose (0-D and 1-D: unchanged)
  // Elements start, start+step, ... below end of `dim`; start/end clamp like Python slices.
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes dim
  Tensor expand(Shape shape) const;                 // -1 keeps a size; new dims in front
  Tensor expand_as(const Tensor& other) const { return expand(other.shape()); }
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor unflatten(int64_t dim, Shape sizes) const;
  Tensor as_strided(Shape shape, Shape strides, int64_t offset) const;
  Tensor alias() const;  // a new handle on the same view

  // ---- copies -----------------------------------------------------------------------------
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;
  Tensor& copy_(const Tensor& source);  // broadcasts source; converts dtype and device
  Tensor to(DType dtype) const;         // itself when the dtype already matches
  Tensor to(Device device) const;
  Tensor to(Device device, DType dtype) const;
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor cuda(int index = 0) const { return to(Device::cuda(index)); }

  // ---- in-place fills and arithmetic (defined with the ops) ---------------------------------
  Tensor& fill_(const Scalar& value);
  Tensor& zero_() { return fill_(0); }
  Tensor& operator+=(const Tensor& other);
  Tensor& operator-=(const Tensor& other);
  Tensor& operator*=(const Tensor& other);
  Tensor& operator/=(const Tensor& other);
  Tensor& operator+=(const Scalar& other);
  Tensor& operator-=(const Scalar& other);
  Tensor& operator*=(const Scalar& other);
  Tensor& operator/=(const Scalar& other);

  std::string str() const;  // printed like PyTorch: tensor([...], dtype=..., device=...)

  // ---- autograd (autograd/tensor_autograd.cpp; see docs/autograd.md) ------------------------
  // Only floating tensors can require grad. A leaf is a tensor with no grad_fn: made by the user,
  // or by an op that recorded nothing.
  bool requires_grad() const;
  Tensor& requires_grad_(bool requires_grad = true);
  bool is_leaf() const;
  // The gradient accumulated by backward (leaves, and tensors that retain_grad); undefined if none.
  Tensor grad() const;
  void set_grad(const Tensor& grad) const;
  // set_to_none (PyTorch's default) drops the gradient; otherwise it is zeroed in place.
  void zero_grad(bool set_to_none = true) const;
  // The node that made this tensor (null for leaves), and which of its outputs this is.
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  uint32_t output_nr() const;
  // A new handle on the same data that takes no part in autograd.
  Tensor detach() const;
  Tensor& detach_();
  // Keep the gradient of a non-leaf in grad() when backward passes through it.
  void retain_grad() const;
  bool retains_grad() const;
  // Back-propagates from this tensor. `gradient` may be omitted only for a one-element tensor.
  void backward(const Tensor& gradient = {}, bool retain_graph = false, bool create_graph = false) const;
  // Runs on this tensor's gradient before it is used; a defined result replaces the gradient.
  void register_hook(std::function<Tensor(const Tensor&)> hook) const;
  // Leaves only: runs after backward has accumulated into grad() (gradient bucketing uses it).
  void register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const;
  // The storage's version counter (bumped by every in-place write).
  uint64_t version() const { return impl().storage->version(); }

 private:
  [[noreturn]] static void throw_undefined();
  // Geometry-only views (core/tensor.cpp); the public view methods wrap them with autograd.
  Tensor view_impl(Shape shape) const;
  Tensor reshape_impl(Shape shape) const;
  Tensor permute_impl(std::vector<int64_t> dims) const;
  Tensor transpose_impl(int64_t dim0, int64_t dim1) const;
  Tensor slice_impl(int64_t dim, int64_t start, int64_t end, int64_t step) const;
  Tensor select_impl(int64_t dim, int64_t index) const;
  Tensor expand_impl(Shape shape) const;
  Tensor squeeze_impl() const;
  Tensor squeeze_impl(int64_t dim) const;
  Tensor unsqueeze_impl(int64_t dim) const;
  Tensor as_strided_impl(Shape shape, Shape strides, int64_t offset) const;
  Tensor alias_impl() const;

  std::shared_ptr<TensorImpl> impl_;
};

// ---- shape helpers shared by ops -----------------------------------------------------------
int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
// Wraps a possibly negative dim into [0, ndim); throws "[op] dim d out of range for a k-D tensor".
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
// The broadcast shape of two shapes (NumPy rules); throws naming both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// ---- memory overlap, for ops that write into an existing tensor ------------------------------
// Throws "[op] cannot write in place into ... an expanded view" when `out` has a dim of size > 1
// and stride 0: its elements share memory, so an in-place result would depend on write order
// (PyTorch refuses the same writes; fill_ is exempt, its result does not depend on order).
void check_no_internal_overlap(const Tensor& out, const char* op);
// `input`, or a copy of it when it shares memory with `out` without being exactly the same view:
// an elementwise kernel writing `out` must never read an element it has already overwritten
// (x[1:].add_(x[:-1]), x.copy_(x.t())); in parallel loops that read would also be a data race.
// PyTorch refuses most of these calls; Keel computes them as if the input had been read first.
Tensor unaliased_input(const Tensor& input, const Tensor& out);

// A new tensor of the given shape; memory uninitialised.
Tensor empty(Shape shape, TensorOptions options = {});
// Wraps existing memory without copying. Strides default to contiguous; `deleter` runs when
// the last tensor on it goes away (pass nothing when the caller keeps ownership).
Tensor from_blob(void* data, Shape shape, TensorOptions options = {}, Deleter deleter = {});
Tensor from_blob(void* data, Shape shape, Shape strides, TensorOptions options, Deleter deleter = {});

std::string to_string(const Shape& shape);  // "[2, 3]"
// Writes tensor.str(): what PyTorch prints for the same tensor.
std::ostream& operator<<(std::ostream& stream, const Tensor& tensor);

}  // namespace keel
