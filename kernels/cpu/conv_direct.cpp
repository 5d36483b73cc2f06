// Direct convolution loops (the f64 path, which gradcheck runs) and the dtype dispatch of the
// convolution and batch-norm kernels: f64 -> these loops, f32 / bf16 -> oneDNN.
//
//   y[n,o,i,j] = b[o] + sum_{c,p,q} x[n, g Cg + c, i sH - pH + p dH, j sW - pW + q dW] w[o,c,p,q]
//   (Cg = C / G input channels per group, Og = O / G outputs per group, g = o / Og)
// FLOPs per call: 2 N O OH OW Cg kH kW for each of forward, backward_input and backward_weight.
// Parallel over (n, o) planes (forward), (n, c) planes (backward_input) and o (backward_weight),
// so that no two threads write one element.
#include <omp.h>

#include "keel/kernels/cpu/conv_kernels.h"

namespace keel::cpu {

namespace {

struct Dims {
  int64_t n, c, h, w, o, cg, og, kh, kw, oh, ow;
};
Dims dims_of(const Tensor& x, const Tensor& w, const Tensor& y, int64_t groups) {
  return {x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3], w.shape()[0], w.shape()[1], w.shape()[0] / groups,
          w.shape()[2], w.shape()[3], y.shape()[2], y.shape()[3]};
}

// Input row (or column) read by output position i at kernel tap p; outside [0, size) reads zero.
inline int64_t tap(int64_t i, int64_t p, int64_t stride, int64_t padding, int64_t dilation) {
  return i * stride - padding + p * dilation;
}

template <typename T>
void forward_loops(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) {
  const Dims d = dims_of(x, w, y, p.groups);
  const T* xd = x.data_ptr<T>();
  const T* wd = w.data_ptr<T>();
  const T* bd = b.defined() ? b.data_ptr<T>() : nullptr;
  T* yd = y.data_ptr<T>();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t o = 0; o < d.o; ++o) {
      const int64_t g = o / d.og;
      T* plane = yd + (n * d.o + o) * d.oh * d.ow;
      for (int64_t i = 0; i < d.oh * d.ow; ++i) plane[i] = bd ? bd[o] : T(0);
      for (int64_t c = 0; c < d.cg; ++c) {
        const T* xplane = xd + (n * d.c + g * d.cg + c) * d.h * d.w;
        const T* wplane = wd + (o * d.cg + c) * d.kh * d.kw;
        for (int64_t kp = 0; kp < d.kh; ++kp) {
          for (int64_t kq = 0; kq < d.kw; ++kq) {
            const T weight = wplane[kp * d.kw + kq];
            for (int64_t i = 0; i < d.oh; ++i) {
              const int64_t row = tap(i, kp, p.stride[0], p.padding[0], p.dilation[0]);
              if (row < 0 || row >= d.h) continue;
              for (int64_t j = 0; j < d.ow; ++j) {
                const int64_t col = tap(j, kq, p.stride[1], p.padding[1], p.dilation[1]);
                if (col < 0 || col >= d.w) continue;
                plane[i * d.ow + j] += xplane[row * d.w + col] * weight;
              }
            }
          }
        }
      }
    }
  }
}

template <typename T>
void backward_input_loops(const Tensor& grad_x, const Tensor& grad_y, const Tensor& w, const Conv2dParams& p) {
  const Dims d = dims_of(grad_x, w, grad_y, p.groups);
  const T* gyd = grad_y.data_ptr<T>();
  const T* wd = w.data_ptr<T>();
  T* gxd = grad_x.data_ptr<T>();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < d.n; ++n) {
    for (int64_t ci = 0; ci < d.c; ++ci) {
      const int64_t g = ci / d.cg, c = ci % d.cg;
      T* xplane = gxd + (n * d.c + ci) * d.h * d.w;
      for (int64_t i = 0; i < d.h * d.w; ++i) xplane[i] = T(0);
      for (int64_t o = g * d.og; o < (g + 1) * d.og; ++o) {
        const T* yplane = gyd + (n * d.o + o) * d.oh * d.ow;
        const T* wplane = wd + (o * d.cg + c) * d.kh * d.kw;
        for (int64_t kp = 0; kp < d.kh; ++kp) {
          for (int64_t kq = 0; kq < d.kw; ++kq) {
            const T weight = wplane[kp * d.kw + kq];
            for (int64_t i = 0; i < d.oh; ++i) {
              const int64_t row = tap(i, kp, p.stride[0], p.padding[0], p.dilation[0]);
              if (row < 0 || row >= d.h) continue;
              for (int64_t j = 0; j < d.ow; ++j) {
                const int64_t col = tap(j, kq, p.stride[1], p.padding[1], p.dilation[1]);
                if (col < 0 || col >= d.w) continue;
                xplane[row * d.w + col] += yplane[i * d.ow + j] * weight;
              }
            }
          }
        }
      }
    }
  }
}

template <typename T>
void backward_weight_loops(const Tensor& grad_w, const Tensor& grad_bias, const Tensor& grad_y, const Tensor& x,
                           const Conv2dParams& p) {
  const Dims d = dims_of(x, grad_w, grad_y, p.groups);
  const T* gyd = grad_y.data_ptr<T>();
  const T* xd = x.data_ptr<T>();
  T* gwd = grad_w.data_ptr<T>();
  T* gbd = grad_bias.defined() ? grad_bias.data_ptr<T>() : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < d.o; ++o) {
    const int64_t g = o / d.og;
    T bias_sum = T(0);
    for (int64_t c = 0; c < d.cg; ++c) {
      for (int64_t kp = 0; kp < d.kh; ++kp) {
        for (int64_t kq = 0; kq < d.kw; ++kq) {
          T acc = T(0);
          for (int64_t n = 0; n < d.n; ++n) {
            const T* yplane = gyd + (n * d.o + o) * d.oh * d.ow;
            const T* xplane = xd + (n * d.c + g * d.cg + c) * d.h * d.w;
            for (int64_t i = 0; i < d.oh; ++i) {
              const int64_t row = tap(i, kp, p.stride[0], p.padding[0], p.dilation[0]);
              if (row < 0 || row >= d.h) continue;
              for (int64_t j = 0; j < d.ow; ++j) {
                const int64_t col = tap(j, kq, p.stride[1], p.padding[1], p.dilation[1]);
                if (col < 0 || col >= d.w) continue;
                acc += yplane[i * d.ow + j] * xplane[row * d.w + col];
              }
            }
          }
          gwd[((o * d.cg + c) * d.kh + kp) * d.kw + kq] = acc;
        }
      }
    }
    if (gbd) {
      for (int64_t n = 0; n < d.n; ++n) {
        const T* yplane = gyd + (n * d.o + o) * d.oh * d.ow;
        for (int64_t i = 0; i < d.oh * d.ow; ++i) bias_sum += yplane[i];
      }
      gbd[o] = bias_sum;
    }
  }
}

}  // namespace

namespace direct {
void conv2d_forward(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& params) {
  if (x.dtype() == DType::f64) forward_loops<double>(y, x, w, b, params);
  else forward_loops<float>(y, x, w, b, params);
}
void conv2d_backward_input(const Tensor& grad_x, const Tensor& grad_y, const Tensor& w, const Conv2dParams& params) {
  if (w.dtype() == DType::f64) backward_input_loops<double>(grad_x, grad_y, w, params);
  else backward_input_loops<float>(grad_x, grad_y, w, params);
}
void conv2d_backward_weight(const Tensor& grad_w, const Tensor& grad_bias, const Tensor& grad_y, const Tensor& x,
                            const Conv2dParams& params) {
  if (x.dtype() == DType::f64) backward_weight_loops<double>(grad_w, grad_bias, grad_y, x, params);
  else backward_weight_loops<float>(grad_w, grad_bias, grad_y, x, params);
}
}  // namespace direct

void conv2d_forward(const char* op, const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b,
                    const Conv2dParams& params) {
  if (x.dtype() == DType::f64) direct::conv2d_forward(y, x, w, b, params);
  else onednn::conv2d_forward(op, y, x, w, b, params);
}
void conv2d_backward_input(const char* op, const Tensor& grad_x, const Tensor& grad_y, const Tensor& w,
                           const Conv2dParams& params) {
  if (w.dtype() == DType::f64) direct::conv2d_backward_input(grad_x, grad_y, w, params);
  else onednn::conv2d_backward_input(op, grad_x, grad_y, w, params);
}
void conv2d_backward_weight(const char* op, const Tensor& grad_w, const Tensor& grad_bias, const Tensor& grad_y,
                            const Tensor& x, const Conv2dParams& params) {
  if (x.dtype() == DType::f64) direct::conv2d_backward_weight(grad_w, grad_bias, grad_y, x, params);
  else onednn::conv2d_backward_weight(op, grad_w, grad_bias, grad_y, x, params);
}

void batch_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, bool training, double eps) {
  onednn::batch_norm_forward(y, mean, var, x, weight, bias, training, eps);
}
void batch_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                         const Tensor& grad_y, const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, bool training, double eps) {
  onednn::batch_norm_backward(grad_x, grad_weight, grad_bias, grad_y, x, mean, var, weight, training, eps);
}

}  // namespace keel::cpu
