#pragma once
// Reductions over any set of dims (empty list = all dims) with keepdim, PyTorch's semantics:
// sum/prod of bool or integers give i64; mean/var/std/logsumexp/norm need floating input;
// max/min/amax/amin propagate NaN; reducing an empty dim gives the identity (sum 0, prod 1,
// all true, any false) and throws for max/min/argmax/argmin (no identity), as PyTorch does.
#include <optional>
#include <vector>

#include "keel/core/tensor.h"

namespace keel {

using Dims = std::vector<int64_t>;

Tensor sum(const Tensor& x, const Dims& dims = {}, bool keepdim = false,
           std::optional<DType> dtype = std::nullopt);
Tensor mean(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor prod(const Tensor& x, const Dims& dims = {}, bool keepdim = false,
            std::optional<DType> dtype = std::nullopt);
Tensor amax(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor all(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor any(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
// var/std with Bessel's correction by default (correction = 1); N - correction <= 0 gives NaN/inf
// like PyTorch.
Tensor var(const Tensor& x, const Dims& dims = {}, double correction = 1, bool keepdim = false);
Tensor std(const Tensor& x, const Dims& dims = {}, double correction = 1, bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim = false);
// p-norm: p = 2 (default), 1, inf (max |x|), -inf (min |x|), 0 (count of non-zeros), any other p.
Tensor norm(const Tensor& x, double p = 2.0, const Dims& dims = {}, bool keepdim = false);

// Sums x down to `shape`, a shape x broadcasts from (torch.Tensor.sum_to_size): the reverse of
// expand, and so the gradient of every broadcasting op. Returns x itself when the shapes match.
Tensor sum_to_size(const Tensor& x, const Shape& shape);

// Values and indices along one dim; the index of the first extreme (or first NaN) wins.
struct ValuesIndices {
  Tensor values;
  Tensor indices;  // i64
};
ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim = false);
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);  // over all elements
Tensor min(const Tensor& x);
// Index of the extreme along dim; without dim, over the flattened tensor.
Tensor argmax(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);

}  // namespace keel
