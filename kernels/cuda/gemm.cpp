// Batched matrix product on CUDA through cuBLAS (cublasGemmStridedBatchedEx).
//
//   out[z, i, j] = sum_p a[z, i, p] * b[z, p, j]      a: (Z..., M, K)  b: (Z..., K, N)  out: (Z..., M, N)
//   FLOPs: 2 * Z * M * N * K;  reference: the CPU kernel and a float64 triple loop (tests)
//
// cuBLAS is column-major. A row-major out (M x N, leading dim N) is, read column-major, out^T
// (N x M), and out^T = b^T a^T: so cuBLAS computes with m = N, n = M, the first operand b and the
// second a. A row-major matrix (unit column stride) read column-major is its own transpose (op N
// here); a column-major one (unit row stride: a transposed view) needs op T. Operands with neither
// unit stride inside the matrix, or batch dims that do not step with one stride (0 for a broadcast
// operand is fine), are first copied into a contiguous tensor of the broadcast shape.
// Compute types: f32 in f32 (no TF32, PyTorch's default for matmul), f64 in f64, f16/bf16 in f32.
#include "keel/kernels/cuda/gemm.h"

#include <cublas_v2.h>

#include <climits>
#include <optional>
#include <vector>

#include "keel/kernels/cuda/cuda_common.h"
#include "keel/kernels/cuda/cuda_kernels.h"

#define KEEL_CUBLAS_CHECK(call)                                                                       \
  do {                                                                                                \
    const cublasStatus_t keel_cublas_status_ = (call);                                                \
    if (keel_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                                 \
      ::keel::fail("[matmul] cuBLAS error ", cublasGetStatusName(keel_cublas_status_), ": ",         \
                   cublasGetStatusString(keel_cublas_status_), " (in ", #call, ")");                  \
  } while (0)

namespace keel::cuda {

namespace {

// One cuBLAS handle per device and host thread (handles must not be used by two threads at
// once). Never destroyed: destroying at exit can run after the CUDA context is gone.
cublasHandle_t handle_for(int device) {
  thread_local std::vector<cublasHandle_t> handles;
  if (static_cast<int>(handles.size()) <= device) handles.resize(static_cast<size_t>(device) + 1, nullptr);
  if (handles[device] == nullptr) KEEL_CUBLAS_CHECK(cublasCreate(&handles[device]));
  KEEL_CUBLAS_CHECK(cublasSetStream(handles[device], detail::current_stream(device)));
  return handles[device];
}

// How cuBLAS reads one rows x cols matrix with strides (row_stride, col_stride).
struct BlasMatrix {
  bool row_major;  // unit column stride: read column-major it is the transpose
  int64_t ld;      // the leading dimension cuBLAS gets
};

// Size-1 dims leave their stride free, so a vector can be either layout.
std::optional<BlasMatrix> blas_layout(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride) {
  if ((cols <= 1 || col_stride == 1) && (rows <= 1 || row_stride >= std::max<int64_t>(1, cols))) {
    const int64_t ld = rows <= 1 ? std::max<int64_t>(1, cols) : row_stride;
    if (ld <= INT_MAX) return BlasMatrix{true, ld};
  }
  if ((rows <= 1 || row_stride == 1) && (cols <= 1 || col_stride >= std::max<int64_t>(1, rows))) {
    const int64_t ld = cols <= 1 ? std::max<int64_t>(1, rows) : col_stride;
    if (ld <= INT_MAX) return BlasMatrix{false, ld};
  }
  return std::nullopt;
}

// The single stride that steps batch entry z (row-major over the batch dims) to z + 1, if any.
std::optional<int64_t> batch_stride(const Shape& batch, const Shape& strides) {
  std::optional<int64_t> stride;
  int64_t inner = 1;  // entries inside dim d
  for (size_t d = batch.size(); d-- > 0;) {
    if (batch[d] != 1) {
      if (!stride) {
        if (strides[d] % inner != 0) return std::nullopt;
        stride = strides[d] / inner;
      } else if (strides[d] != *stride * inner) {
        return std::nullopt;
      }
    }
    inner *= batch[d];
  }
  return stride.value_or(0);
}

// An operand as cuBLAS can read it: itself, or a contiguous copy of its (broadcast) shape.
struct Operand {
  Tensor tensor;
  BlasMatrix matrix;
  int64_t batch_stride;
};

Operand prepare(const Tensor& x, const Shape& batch) {
  const int64_t ndim = x.dim();
  const int64_t rows = x.shape()[ndim - 2], cols = x.shape()[ndim - 1];
  const Shape batch_strides(x.strides().begin(), x.strides().end() - 2);
  const auto matrix = blas_layout(rows, cols, x.strides()[ndim - 2], x.strides()[ndim - 1]);
  const auto stride = batch_stride(batch, batch_strides);
  if (matrix && stride) return {x, *matrix, *stride};
  Tensor dense = empty(x.shape(), x.options());
  copy(dense, x);
  return {dense, *blas_layout(rows, cols, cols, 1), rows * cols};
}

struct BlasTypes {
  cudaDataType_t data;
  cublasComputeType_t compute;
};

BlasTypes blas_types(DType dtype) {
  switch (dtype) {
    case DType::f32: return {CUDA_R_32F, CUBLAS_COMPUTE_32F};
    case DType::f64: return {CUDA_R_64F, CUBLAS_COMPUTE_64F};
    case DType::f16: return {CUDA_R_16F, CUBLAS_COMPUTE_32F};
    case DType::bf16: return {CUDA_R_16BF, CUBLAS_COMPUTE_32F};
    default: fail("[matmul] no CUDA kernel for dtype ", dtype_name(dtype));
  }
}

}  // namespace

void matmul(const Tensor& out, const Tensor& a, const Tensor& b) {
  const int64_t ndim = out.dim();
  const int64_t m = out.shape()[ndim - 2], n = out.shape()[ndim - 1], k = a.shape()[ndim - 1];
  if (out.numel() == 0) return;
  if (k == 0) {
    fill(out, 0);
    return;
  }
  const Shape batch(out.shape().begin(), out.shape().end() - 2);
  const int64_t batch_count = shape_numel(batch);
  KEEL_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && batch_count <= INT_MAX,
             "[matmul] sizes beyond cuBLAS's int range: got out ", out.shape(), " and K = ", k);
  const int device = out.device().index;
  detail::DeviceGuard guard(device, "matmul");
  const Operand left = prepare(a, batch), right = prepare(b, batch);
  const BlasTypes types = blas_types(out.dtype());
  // out^T (N x M) = b^T (N x K) a^T (K x M), column-major.
  const cublasOperation_t op_b = right.matrix.row_major ? CUBLAS_OP_N : CUBLAS_OP_T;
  const cublasOperation_t op_a = left.matrix.row_major ? CUBLAS_OP_N : CUBLAS_OP_T;
  const double alpha64 = 1, beta64 = 0;
  const float alpha32 = 1, beta32 = 0;
  const bool double_scalars = types.compute == CUBLAS_COMPUTE_64F;
  KEEL_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      handle_for(device), op_b, op_a, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k),
      double_scalars ? static_cast<const void*>(&alpha64) : static_cast<const void*>(&alpha32),
      right.tensor.raw_data(), types.data, static_cast<int>(right.matrix.ld), right.batch_stride,
      left.tensor.raw_data(), types.data, static_cast<int>(left.matrix.ld), left.batch_stride,
      double_scalars ? static_cast<const void*>(&beta64) : static_cast<const void*>(&beta32), out.raw_data(),
      types.data, static_cast<int>(n), m * n, static_cast<int>(batch_count), types.compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace keel::cuda
