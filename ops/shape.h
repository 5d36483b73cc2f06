#pragma once
// Ops that build, split and index tensors. Views (permute, slice, expand, ...) are methods of
// Tensor; these ops either copy or return several views.
#include <limits>
#include <vector>

#include "keel/core/tensor.h"

namespace keel {

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Pieces of split_size along dim (the last may be smaller), or of the given sizes. Views.
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& split_sizes, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim = 0);

// out[i][j] = x[index[i][j]][j] (dim 0), as torch.gather; index is i64 with x's rank.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// self[index[i][j]][j] = source[i][j] (dim 0), as torch.scatter; out-of-place and in-place.
Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source);
Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Scalar& value);
Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source);
Tensor& scatter_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& source);
Tensor& scatter_add_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& source);
// base with base.slice(dim, start, end, step) replaced by src, out of place (torch.slice_scatter):
// the gradient of slice and select.
Tensor slice_scatter(const Tensor& base, const Tensor& src, int64_t dim = 0, int64_t start = 0,
                     int64_t end = std::numeric_limits<int64_t>::max(), int64_t step = 1);
// Picks the entries `index` (1-D, i32 or i64) along dim.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// x with value where mask (bool, broadcast to x) is true.
Tensor masked_fill(const Tensor& x, const Tensor& mask, const Scalar& value);
Tensor& masked_fill_(Tensor& x, const Tensor& mask, const Scalar& value);
// i64 indices -> i64 one-hot vectors in a new last dim; num_classes = -1 means max + 1.
Tensor one_hot(const Tensor& indices, int64_t num_classes = -1);
// Lower / upper triangle of the last two dims; the rest is zero. diagonal as in PyTorch.
Tensor tril(const Tensor& x, int64_t diagonal = 0);
Tensor triu(const Tensor& x, int64_t diagonal = 0);

}  // namespace keel
