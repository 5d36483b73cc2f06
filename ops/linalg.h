#pragma once
// Matrix products: matmul and linear, PyTorch's semantics (torch.matmul, torch.nn.functional.linear).
// scaled_dot_product_attention lives in ops/attention.h (included here for existing code).
// Operands must share one floating dtype (f32, f64, f16, bf16; 16-bit accumulates in f32) and a
// device, as PyTorch requires; integer operands are refused.
#include <optional>

#include "keel/core/rng.h"
#include "keel/core/tensor.h"
#include "keel/ops/attention.h"

namespace keel {

// torch.matmul:
//   1-D x 1-D: dot product (0-D result)
//   2-D x 2-D: matrix product
//   1-D a: treated as [1, K] (the 1 removed again); 1-D b: treated as [K, 1] (the 1 removed again)
//   N-D (N > 2): batched over the leading dims, which broadcast: [2,1,3,4] x [5,4,6] -> [2,5,3,6]
// Any strides (transposed, sliced, expanded operands) are read as they are. K = 0 gives zeros.
Tensor matmul(const Tensor& a, const Tensor& b);

// torch.nn.functional.linear: y = x W^T + b for x [..., in], weight [out, in] and an optional bias
// (broadcast to [..., out], usually [out]). x may be 1-D ([in] -> [out]).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = {});

// The activation that linear can apply to x W^T + b inside the GEMM (on each output tile while it
// is in cache, with no separate pass): relu, gelu (erf, PyTorch's default), gelu_tanh (gelu with
// approximate="tanh"), silu.
enum class Activation { none, relu, gelu, gelu_tanh, silu };

// y = activation(x W^T + b): the same values (and gradients) as activation(linear(x, weight,
// bias)), computed in one pass on the CPU when bias is undefined or [out] (otherwise, and on CUDA,
// as that composite). 16-bit inputs are rounded once, after the activation.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation);

}  // namespace keel
