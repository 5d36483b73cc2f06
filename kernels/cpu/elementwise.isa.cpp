// Elementwise CPU kernels: unary, binary, where, clamp, copy (with dtype conversion), fill.
//
//   out[i] = f(x[i])  /  f(a[i], b[i])  /  cond[i] ? a[i] : b[i]     over any strided views
//   bytes per element: itemsize * (operands); FLOPs: 1 for arithmetic, more for transcendental.
//
// The math of each op is in kernels/op_math.h (shared with CUDA); this file only walks memory.
// Contiguous runs (and a contiguous operand against a broadcast scalar) get plain indexed
// loops that the compiler vectorizes for this file's instruction set; other strides fall back
// to pointer-stepping loops. The reference these must match is kernels/reference/.
#include <cstring>

#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/isa_table.h"
#include "keel/kernels/cpu/strided_loop.h"
#include "keel/kernels/dispatch.h"

namespace keel::cpu::KEEL_CPU_ISA {

namespace {

// Applies f elementwise to one inner run of two operands: out (Out), x (In).
template <typename Out, typename In, typename F>
inline void unary_run(char* const* pointers, const int64_t* strides, int64_t count, F f) {
  if (strides[0] == sizeof(Out) && strides[1] == sizeof(In)) {
    Out* __restrict out = reinterpret_cast<Out*>(pointers[0]);
    const In* __restrict x = reinterpret_cast<const In*>(pointers[1]);
    for (int64_t i = 0; i < count; ++i) out[i] = f(x[i]);
  } else {
    char* out = pointers[0];
    const char* x = pointers[1];
    for (int64_t i = 0; i < count; ++i, out += strides[0], x += strides[1])
      *reinterpret_cast<Out*>(out) = f(*reinterpret_cast<const In*>(x));
  }
}

template <typename Out, typename In, typename F>
inline void binary_run(char* const* pointers, const int64_t* strides, int64_t count, F f) {
  Out* __restrict out = reinterpret_cast<Out*>(pointers[0]);
  const In* __restrict a = reinterpret_cast<const In*>(pointers[1]);
  const In* __restrict b = reinterpret_cast<const In*>(pointers[2]);
  if (strides[0] == sizeof(Out) && strides[1] == sizeof(In) && strides[2] == sizeof(In)) {
    for (int64_t i = 0; i < count; ++i) out[i] = f(a[i], b[i]);
  } else if (strides[0] == sizeof(Out) && strides[1] == sizeof(In) && strides[2] == 0) {
    const In scalar = *b;
    for (int64_t i = 0; i < count; ++i) out[i] = f(a[i], scalar);
  } else if (strides[0] == sizeof(Out) && strides[1] == 0 && strides[2] == sizeof(In)) {
    const In scalar = *a;
    for (int64_t i = 0; i < count; ++i) out[i] = f(scalar, b[i]);
  } else {
    char* o = pointers[0];
    const char* pa = pointers[1];
    const char* pb = pointers[2];
    for (int64_t i = 0; i < count; ++i, o += strides[0], pa += strides[1], pb += strides[2])
      *reinterpret_cast<Out*>(o) = f(*reinterpret_cast<const In*>(pa), *reinterpret_cast<const In*>(pb));
  }
}

// Runs body<T> for x's dtype, instantiating only the dtypes the op accepts.
template <bool floating_only, typename F> void dispatch_for(DType dtype, const char* op, F&& body) {
  if constexpr (floating_only) dispatch_floating(dtype, op, body);
  else dispatch_all(dtype, op, body);
}

template <UnaryOp op> void unary_typed(const Tensor& out, const Tensor& x) {
  dispatch_for<unary_floating_only(op)>(x.dtype(), "unary", [&]<typename T>() {
    using C = compute_t<T>;
    if constexpr (unary_gives_bool(op)) {
      for_each<2>({&out, &x}, [](char* const* p, const int64_t* s, int64_t n) {
        unary_run<bool, T>(p, s, n, [](T v) { return math::unary_predicate<op>(static_cast<C>(v)); });
      });
    } else {
      for_each<2>({&out, &x}, [](char* const* p, const int64_t* s, int64_t n) {
        unary_run<T, T>(p, s, n, [](T v) { return static_cast<T>(math::unary<op>(static_cast<C>(v))); });
      });
    }
  });
}

template <BinaryOp op> void binary_typed(const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_for<binary_floating_only(op)>(a.dtype(), "binary", [&]<typename T>() {
    using C = compute_t<T>;
    if constexpr (binary_gives_bool(op)) {
      for_each<3>({&out, &a, &b}, [](char* const* p, const int64_t* s, int64_t n) {
        binary_run<bool, T>(p, s, n, [](T x, T y) {
          return math::binary_predicate<op>(static_cast<C>(x), static_cast<C>(y));
        });
      });
    } else {
      for_each<3>({&out, &a, &b}, [](char* const* p, const int64_t* s, int64_t n) {
        binary_run<T, T>(p, s, n, [](T x, T y) {
          return static_cast<T>(math::binary<op>(static_cast<C>(x), static_cast<C>(y)));
        });
      });
    }
  });
}

}  // namespace

void unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  switch (op) {
#define KEEL_UNARY_CASE(name) \
  case UnaryOp::name: return unary_typed<UnaryOp::name>(out, x);
    KEEL_UNARY_CASE(neg) KEEL_UNARY_CASE(abs) KEEL_UNARY_CASE(exp) KEEL_UNARY_CASE(log)
    KEEL_UNARY_CASE(log1p) KEEL_UNARY_CASE(expm1) KEEL_UNARY_CASE(sqrt) KEEL_UNARY_CASE(rsqrt)
    KEEL_UNARY_CASE(sin) KEEL_UNARY_CASE(cos) KEEL_UNARY_CASE(tanh) KEEL_UNARY_CASE(sigmoid)
    KEEL_UNARY_CASE(relu) KEEL_UNARY_CASE(gelu_erf) KEEL_UNARY_CASE(gelu_tanh) KEEL_UNARY_CASE(silu)
    KEEL_UNARY_CASE(logical_not) KEEL_UNARY_CASE(isnan) KEEL_UNARY_CASE(isinf)
#undef KEEL_UNARY_CASE
  }
}

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
#define KEEL_BINARY_CASE(name) \
  case BinaryOp::name: return binary_typed<BinaryOp::name>(out, a, b);
    KEEL_BINARY_CASE(add) KEEL_BINARY_CASE(sub) KEEL_BINARY_CASE(mul) KEEL_BINARY_CASE(div)
    KEEL_BINARY_CASE(pow) KEEL_BINARY_CASE(maximum) KEEL_BINARY_CASE(minimum)
    KEEL_BINARY_CASE(eq) KEEL_BINARY_CASE(ne) KEEL_BINARY_CASE(lt) KEEL_BINARY_CASE(le)
    KEEL_BINARY_CASE(gt) KEEL_BINARY_CASE(ge) KEEL_BINARY_CASE(logical_and)
    KEEL_BINARY_CASE(logical_or) KEEL_BINARY_CASE(logical_xor)
#undef KEEL_BINARY_CASE
  }
}

void where(const Tensor& out, const Tensor& condition, const Tensor& a, const Tensor& b) {
  dispatch_all(out.dtype(), "where", [&]<typename T>() {
    for_each<4>({&out, &condition, &a, &b}, [](char* const* p, const int64_t* s, int64_t n) {
      if (s[0] == sizeof(T) && s[1] == 1 && s[2] == sizeof(T) && s[3] == sizeof(T)) {
        T* __restrict o = reinterpret_cast<T*>(p[0]);
        const bool* __restrict c = reinterpret_cast<const bool*>(p[1]);
        const T* __restrict x = reinterpret_cast<const T*>(p[2]);
        const T* __restrict y = reinterpret_cast<const T*>(p[3]);
        for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? x[i] : y[i];
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        const bool c = *reinterpret_cast<const bool*>(p[1] + i * s[1]);
        *reinterpret_cast<T*>(p[0] + i * s[0]) =
            *reinterpret_cast<const T*>((c ? p[2] + i * s[2] : p[3] + i * s[3]));
      }
    });
  });
}

void clamp(const Tensor& out, const Tensor& x, const Tensor& low, const Tensor& high) {
  const bool has_low = low.defined(), has_high = high.defined();
  // An absent bound is passed as x itself so that the loop has a fixed arity; it is ignored.
  const Tensor& low_or_x = has_low ? low : x;
  const Tensor& high_or_x = has_high ? high : x;
  dispatch_all(out.dtype(), "clamp", [&]<typename T>() {
    using C = compute_t<T>;
    for_each<4>({&out, &x, &low_or_x, &high_or_x}, [has_low, has_high](char* const* p, const int64_t* s, int64_t n) {
      if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == 0 && s[3] == 0) {
        T* __restrict o = reinterpret_cast<T*>(p[0]);
        const T* __restrict v = reinterpret_cast<const T*>(p[1]);
        const C lo = static_cast<C>(*reinterpret_cast<const T*>(p[2]));
        const C hi = static_cast<C>(*reinterpret_cast<const T*>(p[3]));
        for (int64_t i = 0; i < n; ++i)
          o[i] = static_cast<T>(math::clamp(static_cast<C>(v[i]), lo, hi, has_low, has_high));
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        const C v = static_cast<C>(*reinterpret_cast<const T*>(p[1] + i * s[1]));
        const C lo = static_cast<C>(*reinterpret_cast<const T*>(p[2] + i * s[2]));
        const C hi = static_cast<C>(*reinterpret_cast<const T*>(p[3] + i * s[3]));
        *reinterpret_cast<T*>(p[0] + i * s[0]) = static_cast<T>(math::clamp(v, lo, hi, has_low, has_high));
      }
    });
  });
}

void copy(const Tensor& dst, const Tensor& src) {
  dispatch_all(dst.dtype(), "copy", [&]<typename To>() {
    dispatch_all(src.dtype(), "copy", [&]<typename From>() {
      for_each<2>({&dst, &src}, [](char* const* p, const int64_t* s, int64_t n) {
        if constexpr (std::is_same_v<To, From>) {
          if (s[0] == sizeof(To) && s[1] == sizeof(From)) {
            std::memcpy(p[0], p[1], static_cast<size_t>(n) * sizeof(To));
            return;
          }
        }
        unary_run<To, From>(p, s, n, [](From v) { return convert<To, From>(v); });
      });
    });
  });
}

void fill(const Tensor& dst, const Scalar& value) {
  dispatch_all(dst.dtype(), "fill", [&]<typename T>() {
    const T filled = std::is_same_v<T, bool> || std::is_integral_v<T>
                         ? (value.is_floating() ? convert<T, double>(value.to_double()) : value.to<T>())
                         : convert<T, double>(value.to_double());
    for_each<1>({&dst}, [filled](char* const* p, const int64_t* s, int64_t n) {
      if (s[0] == sizeof(T)) {
        T* __restrict o = reinterpret_cast<T*>(p[0]);
        for (int64_t i = 0; i < n; ++i) o[i] = filled;
      } else {
        for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * s[0]) = filled;
      }
    });
  });
}

}  // namespace keel::cpu::KEEL_CPU_ISA
