#include "keel/core/dtype.h"

#include <array>

namespace keel {
namespace {
struct DTypeInfo {
  std::string_view name;
  size_t size;
  int category;  // 0 bool, 1 integral, 2 floating
};
constexpr std::array<DTypeInfo, kNumDTypes> kInfo = {{
#define KEEL_DTYPE_INFO(name, type, str, category) {str, sizeof(type), category},
    KEEL_FORALL_DTYPES(KEEL_DTYPE_INFO)
#undef KEEL_DTYPE_INFO
}};
const DTypeInfo& info(DType dtype) { return kInfo[static_cast<size_t>(dtype)]; }

// torch.promote_types, in the enum's order: f32 f64 f16 bf16 i8 u8 i32 i64 bool.
// (PyTorch gives int16 for u8 with i8; Keel has no int16 and widens to i32.)
constexpr DType f32_ = DType::f32, f64_ = DType::f64, f16_ = DType::f16, bf_ = DType::bf16,
                i8_ = DType::i8, u8_ = DType::u8, i32_ = DType::i32, i64_ = DType::i64,
                b_ = DType::bool_;
constexpr DType kPromote[kNumDTypes][kNumDTypes] = {
    /* f32  */ {f32_, f64_, f32_, f32_, f32_, f32_, f32_, f32_, f32_},
    /* f64  */ {f64_, f64_, f64_, f64_, f64_, f64_, f64_, f64_, f64_},
    /* f16  */ {f32_, f64_, f16_, f32_, f16_, f16_, f16_, f16_, f16_},
    /* bf16 */ {f32_, f64_, f32_, bf_, bf_, bf_, bf_, bf_, bf_},
    /* i8   */ {f32_, f64_, f16_, bf_, i8_, i32_, i32_, i64_, i8_},
    /* u8   */ {f32_, f64_, f16_, bf_, i32_, u8_, i32_, i64_, u8_},
    /* i32  */ {f32_, f64_, f16_, bf_, i32_, i32_, i32_, i64_, i32_},
    /* i64  */ {f32_, f64_, f16_, bf_, i64_, i64_, i64_, i64_, i64_},
    /* bool */ {f32_, f64_, f16_, bf_, i8_, u8_, i32_, i64_, b_},
};
}  // namespace

std::string_view dtype_name(DType dtype) { return info(dtype).name; }
size_t dtype_size(DType dtype) { return info(dtype).size; }
bool is_floating(DType dtype) { return info(dtype).category == 2; }
bool is_integral(DType dtype) { return info(dtype).category == 1; }
bool is_reduced_float(DType dtype) { return dtype == DType::f16 || dtype == DType::bf16; }
DType promote_types(DType a, DType b) {
  return kPromote[static_cast<size_t>(a)][static_cast<size_t>(b)];
}

}  // namespace keel
