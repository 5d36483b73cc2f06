#pragma once
// Scaled dot-product attention (torch.nn.functional.scaled_dot_product_attention) and its backward.
// On the CPU, f32/bf16/f64 without dropout run the flash kernel (kernels/cpu/flash_attention.isa.cpp:
// tiles with an online softmax, never the whole L x S score matrix); everything else runs the
// composite of public ops (matmul, masked_fill, softmax, dropout, matmul), which is the spec.
#include <optional>

#include "keel/core/rng.h"
#include "keel/core/tensor.h"

namespace keel {

struct SdpaOptions {
  // bool: true where a query may attend to a key (PyTorch's convention); floating (q's dtype):
  // added to the scores. Broadcast to the scores' shape [..., L, S]. Undefined: no mask.
  Tensor attn_mask;
  // Query i attends to keys j <= i (the top-left causal mask tril(ones(L, S)), as PyTorch).
  // Cannot be combined with attn_mask.
  bool is_causal = false;
  std::optional<double> scale;  // default 1 / sqrt(E)
  // Dropout on the attention weights, applied whenever dropout_p > 0 (as PyTorch's function:
  // pass 0 in evaluation), with draws from `generator` (the default generator when null).
  double dropout_p = 0;
  Generator* generator = nullptr;
};

// torch.nn.functional.scaled_dot_product_attention:
//   out = dropout(softmax(q k^T * scale + mask, dim = -1), dropout_p) v
//   q [..., L, E], k [..., S, E], v [..., S, Ev] -> out [..., L, Ev]; leading dims broadcast.
// Grouped-query attention: when q has H heads in dim -3 and k, v have Hkv heads there with
// H % Hkv == 0, each k/v head serves H / Hkv consecutive query heads (k.repeat_interleave(H /
// Hkv, -3), as PyTorch's enable_gqa).
// Rows whose keys are all masked give NaN (softmax of all -inf), as PyTorch's composite.
//
// The flash path (CPU; f32, bf16 or f64; dropout_p == 0; q, k, v of one rank 2..4 with equal
// leading dims before the heads; L, S, E > 0; no float mask that requires grad) records one node
// whose vjp is scaled_dot_product_attention_backward. Other cases run the composite, which
// autograd differentiates op by op.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const SdpaOptions& options = {});

struct SdpaGrads {
  Tensor grad_q, grad_k, grad_v;
};

// The gradients of the flash attention for q (B, H, L, E), k (B, Hkv, S, E), v (B, Hkv, S, Ev)
// given grad_out (B, H, L, Ev), and the forward's out (B, H, L, Ev) and lse (B, H, L: logsumexp of
// the masked scores; f32 for f32/bf16 inputs, f64 for f64). options: attn_mask (bool or q's dtype,
// broadcast to (B, H, L, S)), is_causal and scale as in the forward; dropout_p must be 0.
//
// Double backward: with grad mode on and any of grad_out, q, k, v requiring grad (a backward with
// create_graph), the gradients are computed by the composite formula in public ops instead of the
// kernel (P = softmax(scores) recomputed, dv = P^T g, dS = P (g v^T - rowsum(P . g v^T)), dq = dS k
// scale, dk = dS^T q scale), so autograd differentiates them again; out and lse are not used then.
SdpaGrads scaled_dot_product_attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k,
                                                const Tensor& v, const Tensor& out, const Tensor& lse,
                                                const SdpaOptions& options = {});

}  // namespace keel
