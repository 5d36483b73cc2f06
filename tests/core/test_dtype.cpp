// dtypes: names, sizes, categories, PyTorch's promotion table and result_type, and the 16-bit
// float conversions (Half against the hardware F16C instruction, BFloat16 against an
// independent round-to-nearest-even reference in double).
#include <catch2/catch.hpp>

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <keel/keel.h>

using namespace keel;

namespace {
const std::vector<DType> kOrder = {f32, f64, f16, bf16, i8, u8, i32, i64, bool_};

bool half_is_nan(uint16_t bits) { return (bits & 0x7c00u) == 0x7c00u && (bits & 0x3ffu) != 0; }
bool bfloat16_is_nan(uint16_t bits) { return (bits & 0x7f80u) == 0x7f80u && (bits & 0x7fu) != 0; }
}  // namespace

TEST_CASE("dtype names, sizes and categories", "[dtype]") {
  const std::vector<std::string> names = {"float32", "float64", "float16", "bfloat16", "int8",
                                          "uint8",   "int32",   "int64",   "bool"};
  const std::vector<size_t> sizes = {4, 8, 2, 2, 1, 1, 4, 8, 1};
  REQUIRE(kNumDTypes == 9);
  for (size_t i = 0; i < kOrder.size(); ++i) {
    INFO(names[i]);
    CHECK(dtype_name(kOrder[i]) == names[i]);
    CHECK(dtype_size(kOrder[i]) == sizes[i]);
    CHECK(is_floating(kOrder[i]) == (i < 4));
    CHECK(is_integral(kOrder[i]) == (i >= 4 && i < 8));
    CHECK(is_reduced_float(kOrder[i]) == (i == 2 || i == 3));
  }
  CHECK(dtype_of_v<float> == f32);
  CHECK(dtype_of_v<Half> == f16);
  CHECK(dtype_of_v<BFloat16> == bf16);
  CHECK(dtype_of_v<const uint8_t> == u8);
  CHECK(dtype_of_v<bool> == bool_);
  CHECK(std::is_same_v<cpp_type<DType::i32>, int32_t>);
  CHECK(std::is_same_v<compute_t<Half>, float>);
  CHECK(std::is_same_v<compute_t<int8_t>, int8_t>);
}

// torch.promote_types(a, b) for every pair, rows a and columns b in the order
// f32 f64 f16 bf16 i8 u8 i32 i64 bool (printed by a loop over torch.promote_types). PyTorch
// gives torch.int16 for (i8, u8) and (u8, i8): Keel has no int16 and gives i32 there (marked).
// clang-format off
const DType kTorchPromote[9][9] = {
    /* f32   */ {f32, f64, f32, f32, f32, f32, f32, f32, f32},
    /* f64   */ {f64, f64, f64, f64, f64, f64, f64, f64, f64},
    /* f16   */ {f32, f64, f16, f32, f16, f16, f16, f16, f16},
    /* bf16  */ {f32, f64, f32, bf16, bf16, bf16, bf16, bf16, bf16},
    /* i8    */ {f32, f64, f16, bf16, i8, /*torch.int16*/ i32, i32, i64, i8},
    /* u8    */ {f32, f64, f16, bf16, /*torch.int16*/ i32, u8, i32, i64, u8},
    /* i32   */ {f32, f64, f16, bf16, i32, i32, i32, i64, i32},
    /* i64   */ {f32, f64, f16, bf16, i64, i64, i64, i64, i64},
    /* bool_ */ {f32, f64, f16, bf16, i8, u8, i32, i64, bool_},
};
// torch.result_type(torch.zeros(2, dtype=a), torch.zeros((), dtype=b)): a dimensioned tensor
// keeps its dtype against a 0-dim one unless the 0-dim one is of a higher category.
const DType kTorchDimVsZeroDim[9][9] = {
    /* f32   */ {f32, f32, f32, f32, f32, f32, f32, f32, f32},
    /* f64   */ {f64, f64, f64, f64, f64, f64, f64, f64, f64},
    /* f16   */ {f16, f16, f16, f16, f16, f16, f16, f16, f16},
    /* bf16  */ {bf16, bf16, bf16, bf16, bf16, bf16, bf16, bf16, bf16},
    /* i8    */ {f32, f64, f16, bf16, i8, i8, i8, i8, i8},
    /* u8    */ {f32, f64, f16, bf16, u8, u8, u8, u8, u8},
    /* i32   */ {f32, f64, f16, bf16, i32, i32, i32, i32, i32},
    /* i64   */ {f32, f64, f16, bf16, i64, i64, i64, i64, i64},
    /* bool_ */ {f32, f64, f16, bf16, i8, u8, i32, i64, bool_},
};
// torch.result_type(t, s) for the Python scalars s = 1, 1.5, True; the same for a
// dimensioned t = torch.zeros(2, dtype=a) and a 0-dim t = torch.zeros((), dtype=a).
const DType kTorchTensorVsScalar[9][3] = {
    /* f32   */ {f32, f32, f32},
    /* f64   */ {f64, f64, f64},
    /* f16   */ {f16, f16, f16},
    /* bf16  */ {bf16, bf16, bf16},
    /* i8    */ {i8, f32, i8},
    /* u8    */ {u8, f32, u8},
    /* i32   */ {i32, f32, i32},
    /* i64   */ {i64, f32, i64},
    /* bool_ */ {i64, f32, bool_},
};
// clang-format on

TEST_CASE("promote_types matches torch.promote_types on all 81 pairs", "[dtype]") {
  for (size_t a = 0; a < 9; ++a) {
    for (size_t b = 0; b < 9; ++b) {
      INFO(dtype_name(kOrder[a]) << " with " << dtype_name(kOrder[b]));
      CHECK(promote_types(kOrder[a], kOrder[b]) == kTorchPromote[a][b]);
    }
  }
}

TEST_CASE("result_type matches torch.result_type", "[dtype]") {
  for (size_t a = 0; a < 9; ++a) {
    const Tensor dimensioned_a = zeros({2}, {.dtype = kOrder[a]});
    const Tensor zero_dim_a = zeros({}, {.dtype = kOrder[a]});
    for (size_t b = 0; b < 9; ++b) {
      INFO(dtype_name(kOrder[a]) << " with " << dtype_name(kOrder[b]));
      const Tensor dimensioned_b = zeros({3, 2}, {.dtype = kOrder[b]});
      const Tensor zero_dim_b = zeros({}, {.dtype = kOrder[b]});
      // Same rank class on both sides: plain promotion.
      CHECK(result_type(dimensioned_a, dimensioned_b) == kTorchPromote[a][b]);
      CHECK(result_type(zero_dim_a, zero_dim_b) == kTorchPromote[a][b]);
      // A dimensioned tensor outranks a 0-dim one, in either argument order.
      CHECK(result_type(dimensioned_a, zero_dim_b) == kTorchDimVsZeroDim[a][b]);
      CHECK(result_type(zero_dim_b, dimensioned_a) == kTorchDimVsZeroDim[a][b]);
    }
    INFO(dtype_name(kOrder[a]) << " with scalars 1, 1.5, True");
    const std::vector<Scalar> scalars = {Scalar(1), Scalar(1.5), Scalar(true)};
    for (size_t s = 0; s < scalars.size(); ++s) {
      CHECK(result_type(dimensioned_a, scalars[s]) == kTorchTensorVsScalar[a][s]);
      CHECK(result_type(zero_dim_a, scalars[s]) == kTorchTensorVsScalar[a][s]);
    }
  }
  // torch.result_type(torch.zeros((), dtype=torch.float64), torch.zeros(2, dtype=torch.int32))
  CHECK(result_type(zeros({}, {.dtype = f64}), zeros({2}, {.dtype = i32})) == f64);
  // torch.result_type(torch.zeros(2, dtype=torch.float16), torch.zeros((), dtype=torch.float64))
  CHECK(result_type(zeros({2}, {.dtype = f16}), zeros({}, {.dtype = f64})) == f16);
}

// ---- Half ----------------------------------------------------------------------------------

TEST_CASE("every half bit pattern round-trips through float", "[dtype][half]") {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const uint16_t half_bits = static_cast<uint16_t>(bits);
    const float value = detail::half_bits_to_float(half_bits);
    const Half via_struct(half_bits, Half::FromBits{});
    REQUIRE(detail::float_bits(static_cast<float>(via_struct)) == detail::float_bits(value));
    if (half_is_nan(half_bits)) {
      REQUIRE(std::isnan(value));
      REQUIRE(half_is_nan(detail::float_to_half_bits(value)));
    } else {
      INFO("half bits 0x" << std::hex << bits);
      REQUIRE(detail::float_to_half_bits(value) == half_bits);
      REQUIRE(Half(value).bits == half_bits);
    }
  }
  // Known values: 1, -2, 65504 (largest finite), 2^-24 (smallest subnormal), 2^-14 (smallest normal).
  CHECK(Half(1.0f).bits == 0x3c00);
  CHECK(Half(-2.0f).bits == 0xc000);
  CHECK(Half(65504.0f).bits == 0x7bff);
  CHECK(Half(5.9604644775390625e-08f).bits == 0x0001);
  CHECK(Half(6.103515625e-05f).bits == 0x0400);
  CHECK(Half(-0.0f).bits == 0x8000);
}

namespace {
// The hardware conversion (F16C, round to nearest even): the oracle for float -> half.
__attribute__((target("f16c"))) uint16_t hardware_half(float value) {
  return static_cast<uint16_t>(_cvtss_sh(value, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
}  // namespace

TEST_CASE("float -> half agrees with the F16C instruction", "[dtype][half]") {
  if (!__builtin_cpu_supports("f16c")) {
    WARN("skipped: this CPU has no F16C instruction");
    return;
  }
  int64_t checked = 0, nan_checked = 0;
  auto check = [&](uint32_t float_bits_value) {
    const float value = detail::bits_float(float_bits_value);
    const uint16_t expected = hardware_half(value);
    const uint16_t actual = detail::float_to_half_bits(value);
    ++checked;
    if (std::isnan(value)) {
      ++nan_checked;
      if (!half_is_nan(actual)) FAIL("NaN 0x" << std::hex << float_bits_value << " became 0x" << actual);
      return;
    }
    if (actual != expected) {
      FAIL("float 0x" << std::hex << float_bits_value << " (" << value << "): got half 0x" << actual
                      << ", F16C gives 0x" << expected);
    }
  };
  // Every half value, the exact halfway points between neighbours (ties go to even) and one
  // float ulp either side of them; covers subnormals, the normal range and 65504 -> 65520 -> inf.
  for (uint32_t bits = 0; bits < 0x7c00; ++bits) {
    for (uint32_t sign : {0u, 0x8000u}) {
      const float low = detail::half_bits_to_float(static_cast<uint16_t>(bits | sign));
      const float high = detail::half_bits_to_float(static_cast<uint16_t>((bits + 1) | sign));
      const uint32_t halfway = detail::float_bits((low + high) * 0.5f);  // exact: 11 bits in 24
      check(detail::float_bits(low));
      check(halfway);
      check(halfway - 1);
      check(halfway + 1);
    }
  }
  // A dense sweep of every float magnitude that can round to a nonzero finite half, and past it.
  for (uint32_t bits = 0x32000000u; bits < 0x48000000u; bits += 29) {
    check(bits);
    check(bits | 0x80000000u);
  }
  // Random bit patterns over the whole float range, with NaNs and infinities.
  std::mt19937 engine(12345);
  for (int i = 0; i < 2000000; ++i) check(static_cast<uint32_t>(engine()));
  for (uint32_t special : {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u,
                           0xffffffffu, 0x00000001u, 0x477fefffu, 0x477ff000u, 0x477ff001u}) {
    check(special);
  }
  CHECK(checked > 3000000);
  CHECK(nan_checked > 1000);
  CHECK(detail::float_to_half_bits(detail::bits_float(0x477ff000u)) == 0x7c00);  // 65520 rounds to inf
  CHECK(detail::float_to_half_bits(detail::bits_float(0x477fefffu)) == 0x7bff);  // just below stays 65504
}

// ---- BFloat16 ------------------------------------------------------------------------------

namespace {
// Round to nearest even by comparing distances in double: the two bfloat16 candidates are the
// float truncated to its top 16 bits and the next one away from zero (exact in double).
uint16_t reference_bfloat16(float value) {
  const uint32_t bits = detail::float_bits(value);
  const uint16_t truncated = static_cast<uint16_t>(bits >> 16);
  const uint16_t next = static_cast<uint16_t>(truncated + 1);  // next magnitude; 0x7f7f + 1 = inf
  const double low = std::fabs(static_cast<double>(detail::bits_float(static_cast<uint32_t>(truncated) << 16)));
  // One bfloat16 ulp above `low`, with an unbounded exponent so that the step past the largest
  // finite value (to 2^128) decides overflow to inf as IEEE rounding does.
  const int exponent = (truncated >> 7) & 0xff;
  const double high = low + std::ldexp(1.0, (exponent == 0 ? 1 : exponent) - 127 - 7);
  const double magnitude = std::fabs(static_cast<double>(value));
  if (magnitude - low < high - magnitude) return truncated;
  if (magnitude - low > high - magnitude) return next;
  return (truncated & 1u) ? next : truncated;
}
}  // namespace

TEST_CASE("float -> bfloat16 rounds to nearest even", "[dtype][bfloat16]") {
  int64_t checked = 0;
  auto check = [&](uint32_t float_bits_value) {
    const float value = detail::bits_float(float_bits_value);
    const uint16_t actual = detail::float_to_bfloat16_bits(value);
    ++checked;
    if (std::isnan(value)) {
      if (!bfloat16_is_nan(actual)) FAIL("NaN 0x" << std::hex << float_bits_value << " became 0x" << actual);
      return;
    }
    if (std::isinf(value)) {
      if (actual != (float_bits_value >> 16)) FAIL("inf 0x" << std::hex << float_bits_value << " became 0x" << actual);
      return;
    }
    const uint16_t expected = reference_bfloat16(value);
    if (actual != expected) {
      FAIL("float 0x" << std::hex << float_bits_value << " (" << value << "): got 0x" << actual
                      << ", expected 0x" << expected);
    }
  };
  // Every bfloat16 value, exact ties (low half 0x8000) and their neighbours.
  for (uint32_t top = 0; top < 65536; ++top) {
    for (uint32_t low : {0x0000u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu}) check((top << 16) | low);
  }
  std::mt19937 engine(54321);
  for (int i = 0; i < 2000000; ++i) check(static_cast<uint32_t>(engine()));
  CHECK(checked > 2000000);
  // Round trip of every non-NaN bfloat16 pattern.
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const uint16_t value_bits = static_cast<uint16_t>(bits);
    const float value = detail::bfloat16_bits_to_float(value_bits);
    if (bfloat16_is_nan(value_bits)) {
      REQUIRE(std::isnan(value));
      continue;
    }
    REQUIRE(BFloat16(value).bits == value_bits);
  }
  CHECK(BFloat16(1.0f).bits == 0x3f80);
  CHECK(BFloat16(detail::bits_float(0x3f808000u)).bits == 0x3f80);  // tie, even stays
  CHECK(BFloat16(detail::bits_float(0x3f818000u)).bits == 0x3f82);  // tie, odd rounds up
  CHECK(BFloat16(detail::bits_float(0x7f7fffffu)).bits == 0x7f80);  // largest float rounds to inf
  CHECK(bfloat16_is_nan(BFloat16(detail::bits_float(0x7f800001u)).bits));  // NaN with a low payload only
}
