#pragma once
// Element types. Every dtype is declared once, in KEEL_FORALL_DTYPES; the enum, names, sizes,
// C++ types and the promotion table are generated from that list.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "keel/core/half.h"

namespace keel {

// _(enumerator, C++ type, name as PyTorch prints it, category)
// category: 0 = bool, 1 = integral, 2 = floating (PyTorch's promotion categories).
#define KEEL_FORALL_DTYPES(_)          \
  _(f32, float, "float32", 2)          \
  _(f64, double, "float64", 2)         \
  _(f16, ::keel::Half, "float16", 2)   \
  _(bf16, ::keel::BFloat16, "bfloat16", 2) \
  _(i8, int8_t, "int8", 1)             \
  _(u8, uint8_t, "uint8", 1)           \
  _(i32, int32_t, "int32", 1)          \
  _(i64, int64_t, "int64", 1)          \
  _(bool_, bool, "bool", 0)

enum class DType : uint8_t {
#define KEEL_DTYPE_ENUM(name, type, str, category) name,
  KEEL_FORALL_DTYPES(KEEL_DTYPE_ENUM)
#undef KEEL_DTYPE_ENUM
};
inline constexpr int kNumDTypes = 0
#define KEEL_DTYPE_COUNT(name, type, str, category) +1
    KEEL_FORALL_DTYPES(KEEL_DTYPE_COUNT)
#undef KEEL_DTYPE_COUNT
    ;

// keel::f32, keel::bf16, ... so that options read `{.dtype = bf16}`.
#define KEEL_DTYPE_CONSTANT(name, type, str, category) inline constexpr DType name = DType::name;
KEEL_FORALL_DTYPES(KEEL_DTYPE_CONSTANT)
#undef KEEL_DTYPE_CONSTANT

std::string_view dtype_name(DType dtype);  // "float32", as PyTorch prints it
size_t dtype_size(DType dtype);            // bytes per element
bool is_floating(DType dtype);             // f32 f64 f16 bf16
bool is_integral(DType dtype);             // i8 u8 i32 i64 (not bool)
bool is_reduced_float(DType dtype);        // f16 bf16: computed in f32

// PyTorch's torch.promote_types. Differences: Keel has no int16, so u8 with i8 gives i32.
DType promote_types(DType a, DType b);

// C++ type <-> dtype.
template <typename T> struct dtype_of;
#define KEEL_DTYPE_OF(name, type, str, category) \
  template <> struct dtype_of<type> { static constexpr DType value = DType::name; };
KEEL_FORALL_DTYPES(KEEL_DTYPE_OF)
#undef KEEL_DTYPE_OF
template <typename T> inline constexpr DType dtype_of_v = dtype_of<std::remove_cv_t<T>>::value;

template <DType D> struct cpp_type_of;
#define KEEL_CPP_TYPE_OF(name, type, str, category) \
  template <> struct cpp_type_of<DType::name> { using type_ = type; };
KEEL_FORALL_DTYPES(KEEL_CPP_TYPE_OF)
#undef KEEL_CPP_TYPE_OF
template <DType D> using cpp_type = typename cpp_type_of<D>::type_;

// The type arithmetic on T is done in: float for the 16-bit floats, T otherwise.
template <typename T> struct compute_type { using type = T; };
template <> struct compute_type<Half> { using type = float; };
template <> struct compute_type<BFloat16> { using type = float; };
template <typename T> using compute_t = typename compute_type<T>::type;

}  // namespace keel
