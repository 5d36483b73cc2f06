// The AMX GEMM kernels (kernels/cpu/gemm_amx.h) and the tile emulator they are tested on
// (kernels/cpu/amx_tiles.h).
//
// What runs where:
//   - the tile emulator: hand-computed cases of LDTILECFG / TILELOADD / TILESTORED / TDPBUSD /
//     TDPBF16PS (pair order, round to nearest even, DAZ, FTZ with tininess after rounding), and its
//     f32 rounding steps against this CPU's own vfmadd231ss / addss run with MXCSR.DAZ = FTZ = 1;
//   - the emulated instantiation of the kernels (the same source as the hardware one) against
//     float64 / exact int64 references: odd M, N, K (K = 1, K = 0, empty), transposed and strided
//     operands and outputs, per-tensor and per-channel scales and zero points, every epilogue, a K
//     whose raw int8 sums wrap, and the threaded path;
//   - the drivers' AMX hooks (bf16 matmul / linear, gemm_int8, quantized_matmul) with the emulator
//     switched on;
//   - the hardware instantiation's machine code on a CPU without AMX, each tile instruction
//     trapped (SIGILL), decoded and executed by the emulator: this runs the compiled hardware
//     kernels (operand encodings, addresses, strides) but not real tile units;
//   - the hardware instantiation on AMX itself only on a CPU with AMX (cpu_features().amx_*).
//     Elsewhere, as on the machine these kernels were written on, that test says NOT RUN through
//     WARN and checks nothing: it is no evidence that the hardware path works on AMX.
#include <immintrin.h>
#include <signal.h>
#include <ucontext.h>

#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "keel/kernels/cpu/amx_tiles.h"
#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/cpu/gemm_amx.h"
#include "keel/kernels/cpu/gemm_int8.h"
#include "keel/kernels/cpu/quantize.h"
#include "keel/ops/quantize.h"
#include "gemm_check.h"
#include "test_util.h"

using namespace keel;
using namespace keel::test;
namespace amx = keel::cpu::amx;
namespace emulator = keel::cpu::amx::emulator;

namespace {

float from_bits(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}
uint32_t to_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return bits;
}
uint16_t bf16_bits(float value) { return BFloat16(value).bits; }  // round to nearest even
float bf16_value(uint16_t bits) { return from_bits(static_cast<uint32_t>(bits) << 16); }

struct EmulationGuard {
  EmulationGuard() { cpu::set_amx_emulation(true); }
  ~EmulationGuard() { cpu::set_amx_emulation(false); }
};

struct TileShape {
  int tile, rows, colsb;
};
amx::TileConfig config_of(std::initializer_list<TileShape> tiles) {
  amx::TileConfig config;
  config.palette = 1;
  for (const TileShape& t : tiles) {
    config.rows[t.tile] = static_cast<uint8_t>(t.rows);
    config.colsb[t.tile] = static_cast<uint16_t>(t.colsb);
  }
  return config;
}

// C (1 x 1 f32, tile 0) after TDPBF16PS with A = one row of 2 P bf16 (tile 4) and B = P rows of one
// bf16 pair (tile 6): c + the SDM's pair-wise sum of a[2k + e] * b[2k + e].
float dot_bf16(float c, const std::vector<uint16_t>& a, const std::vector<uint16_t>& b) {
  const int pairs = static_cast<int>(a.size() / 2);
  emulator::load_config(config_of({{0, 1, 4}, {4, 1, 4 * pairs}, {6, pairs, 4}}));
  emulator::load(0, &c, 4);
  emulator::load(4, a.data(), 4 * pairs);
  emulator::load(6, b.data(), 4);
  emulator::dpbf16ps(0, 4, 6);
  float result;
  emulator::store(0, &result, 4);
  emulator::release();
  return result;
}

// ---- this CPU's f32 FMA and add with MXCSR.DAZ = FTZ = 1, round to nearest even ----------------
constexpr unsigned kMxcsrDazFtz = 0x8040u | 0x1f80u;  // FTZ (bit 15), DAZ (bit 6), exceptions masked, RNE
__attribute__((target("fma"))) float cpu_fma_daz_ftz(float a, float b, float c) {
  const unsigned saved = _mm_getcsr();
  __m128 va = _mm_set_ss(a), vb = _mm_set_ss(b), vc = _mm_set_ss(c);
  _mm_setcsr(kMxcsrDazFtz);
  __asm__ volatile("vfmadd231ss %2, %1, %0" : "+x"(vc) : "x"(va), "x"(vb));
  _mm_setcsr(saved);
  return _mm_cvtss_f32(vc);
}
float cpu_add_daz_ftz(float a, float b) {
  const unsigned saved = _mm_getcsr();
  __m128 va = _mm_set_ss(a), vb = _mm_set_ss(b);
  _mm_setcsr(kMxcsrDazFtz);
  __asm__ volatile("addss %1, %0" : "+x"(va) : "x"(vb));
  _mm_setcsr(saved);
  return _mm_cvtss_f32(va);
}
bool same_float(float x, float y) { return (std::isnan(x) && std::isnan(y)) || to_bits(x) == to_bits(y); }

}  // namespace

// ---- the tile emulator ------------------------------------------------------------------------------
TEST_CASE("amx emulator: tile configuration, loads, stores and the faults of misuse", "[amx][emulator]") {
  emulator::release();
  CHECK_FALSE(emulator::configured());
  CHECK_THROWS_WITH(emulator::zero(0), Catch::Contains("no tile configuration"));

  amx::TileConfig bad = amx::full_tiles();
  bad.palette = 2;
  CHECK_THROWS_WITH(emulator::load_config(bad), Catch::Contains("palette 2"));
  bad = amx::full_tiles();
  reinterpret_cast<uint8_t*>(&bad)[5] = 1;
  CHECK_THROWS_WITH(emulator::load_config(bad), Catch::Contains("reserved byte 5"));
  bad = amx::full_tiles();
  bad.rows[3] = 17;
  CHECK_THROWS(emulator::load_config(bad));
  bad = amx::full_tiles();
  bad.colsb[3] = 68;
  CHECK_THROWS(emulator::load_config(bad));
  bad = amx::full_tiles();
  bad.colsb[3] = 0;  // rows without bytes
  CHECK_THROWS(emulator::load_config(bad));
  CHECK_FALSE(emulator::configured());

  // Tile 0: 3 rows x 8 bytes. A load reads exactly that from rows `stride` apart; a store writes
  // exactly that.
  emulator::load_config(config_of({{0, 3, 8}, {1, 16, 64}}));
  CHECK(emulator::configured());
  std::vector<uint8_t> source(3 * 20);
  for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<uint8_t>(i + 1);
  emulator::load(0, source.data(), 20);
  std::vector<uint8_t> target(5 * 12, 0xee);
  emulator::store(0, target.data(), 12);
  for (int r = 0; r < 5; ++r)
    for (int b = 0; b < 12; ++b) {
      INFO("row " << r << " byte " << b);
      CHECK(target[r * 12 + b] == (r < 3 && b < 8 ? source[r * 20 + b] : 0xee));
    }
  CHECK_THROWS_WITH(emulator::load(2, source.data(), 20), Catch::Contains("tile 2 is not configured"));
  emulator::load_config(config_of({{0, 2, 8}, {4, 2, 8}, {6, 2, 8}, {5, 3, 8}}));
  CHECK_THROWS_WITH(emulator::dpbusd(0, 4, 4), Catch::Contains("three different tiles"));
  CHECK_THROWS_WITH(emulator::dpbusd(0, 5, 6), Catch::Contains("do not multiply"));  // 2-row C, 3-row A
  CHECK_NOTHROW(emulator::dpbusd(0, 4, 6));
  // A new configuration zeroes every tile.
  emulator::load_config(config_of({{0, 2, 8}}));
  std::vector<int32_t> zeros(4, -1);
  emulator::store(0, zeros.data(), 8);
  CHECK(zeros == std::vector<int32_t>(4, 0));
  emulator::release();
  CHECK_FALSE(emulator::configured());
  CHECK_THROWS(emulator::store(0, zeros.data(), 8));
  // Tile state is per thread, as on hardware.
  emulator::load_config(amx::full_tiles());
  bool other_thread_configured = true;
  std::thread([&] { other_thread_configured = emulator::configured(); }).join();
  CHECK_FALSE(other_thread_configured);
  CHECK(emulator::configured());
  emulator::release();
}

TEST_CASE("amx emulator: TDPBUSD on hand-computed values, wrapping in s32", "[amx][emulator]") {
  // C 2 x 2 s32, A 2 rows x 2 quads (u8), B 2 quad rows x 2 columns (s8, VNNI: 4 k values per column).
  emulator::load_config(config_of({{0, 2, 8}, {4, 2, 8}, {6, 2, 8}}));
  const uint8_t a[2][8] = {{200, 1, 255, 0, 3, 4, 5, 6}, {0, 0, 0, 0, 255, 255, 255, 255}};
  const int8_t b[2][8] = {{-128, 5, -1, 127, 1, 1, 1, 1}, {1, 2, 3, 4, -1, -1, -1, -1}};
  int32_t c[2][2] = {{10, std::numeric_limits<int32_t>::max()}, {0, std::numeric_limits<int32_t>::min()}};
  emulator::load(0, c, 8);
  emulator::load(4, a, 8);
  emulator::load(6, b, 8);
  emulator::dpbusd(0, 4, 6);
  emulator::store(0, c, 8);
  emulator::release();
  // c00 = 10 + (200*-128 + 1*5 + 255*-1 + 0*127) + (3*1 + 4*2 + 5*3 + 6*4) = 10 - 25850 + 50
  CHECK(c[0][0] == -25790);
  // c01 = INT32_MAX + (200 + 1 + 255 + 0) - (3 + 4 + 5 + 6) = INT32_MAX + 438: wraps
  CHECK(c[0][1] == std::numeric_limits<int32_t>::min() + 437);
  // c10 = 255 * (1 + 2 + 3 + 4)
  CHECK(c[1][0] == 2550);
  // c11 = INT32_MIN - 4 * 255: wraps
  CHECK(c[1][1] == std::numeric_limits<int32_t>::max() - 1019);
}

TEST_CASE("amx emulator: TDPBF16PS pair order, rounding, DAZ and FTZ on hand-computed cases", "[amx][emulator]") {
  const uint16_t zero = 0, one = bf16_bits(1);
  CHECK(dot_bf16(0.5f, {bf16_bits(1), bf16_bits(2)}, {bf16_bits(3), bf16_bits(4)}) == 11.5f);
  // Even and odd products go to separate f32 sums: even 2^24 + 1 -> 2^24 (tie to even), odd
  // 1 - 2^24 (exact), total 1. (Exact: 2; one running f32 sum in k order: 0.)
  CHECK(dot_bf16(0, {bf16_bits(0x1p24f), one, one, bf16_bits(-0x1p24f)}, {one, one, one, one}) == 1.0f);
  // The final add to C rounds to nearest even: 1 + 2^-24 -> 1, 1 + 3 * 2^-24 -> 1 + 2^-22.
  CHECK(dot_bf16(1, {bf16_bits(0x1p-12f), zero}, {bf16_bits(0x1p-12f), zero}) == 1.0f);
  CHECK(dot_bf16(1, {bf16_bits(0x3p-12f), zero}, {bf16_bits(0x1p-12f), zero}) == 1.0f + 0x1p-22f);
  // DAZ on the bf16 inputs: a denormal bf16 (2^-130) times 2^100 counts as 0, not 2^-30.
  CHECK(dot_bf16(0.25f, {uint16_t{0x0008}, zero}, {bf16_bits(0x1p100f), zero}) == 0.25f);
  // DAZ on C: a denormal C (2^-140) counts as 0, so C + 2^-126 is exactly 2^-126.
  CHECK(to_bits(dot_bf16(0x1p-140f, {bf16_bits(0x1p-63f), zero}, {bf16_bits(0x1p-63f), zero})) == to_bits(FLT_MIN));
  // FTZ: a product of 2^-140 is flushed (signed zero), C stays 0.
  CHECK(to_bits(dot_bf16(0, {bf16_bits(0x1p-70f), zero}, {bf16_bits(0x1p-70f), zero})) == 0u);
  // Tininess after rounding: 2^-126 - 3 * 2^-152 rounds (24 bits, unbounded exponent) to
  // 2^-126 - 2^-150, tiny, so it is flushed, although rounding onto the subnormal grid would give
  // FLT_MIN; 2^-126 - 2^-152 rounds to 2^-126, not tiny, and stays.
  CHECK(dot_bf16(0, {bf16_bits(0x1p-63f), zero, bf16_bits(0x3p-76f), zero}, {bf16_bits(0x1p-63f), zero, bf16_bits(-0x1p-76f), zero}) == 0.0f);
  CHECK(dot_bf16(0, {bf16_bits(0x1p-63f), zero, bf16_bits(0x1p-76f), zero}, {bf16_bits(0x1p-63f), zero, bf16_bits(-0x1p-76f), zero}) ==
        FLT_MIN);
  CHECK(std::isinf(dot_bf16(0, {bf16_bits(0x1p127f), zero}, {bf16_bits(4), zero})));
  CHECK(std::isnan(dot_bf16(0, {bf16_bits(NAN), zero}, {one, zero})));
}

TEST_CASE("amx emulator: its f32 steps match this CPU's FMA and add under MXCSR DAZ and FTZ", "[amx][emulator]") {
  // The SDM gives TDPBF16PS's steps as f32 FMAs and adds with DAZ = FTZ = 1 and RNE: what this
  // CPU's vfmadd231ss / addss compute with those MXCSR bits (NaN payloads aside).
  if (!__builtin_cpu_supports("fma")) {
    WARN("NOT RUN: this CPU has no FMA to compare the emulator's rounding steps with");
    return;
  }
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any_bits;
  auto near_power = [&](int exponent) {  // a float of magnitude ~2^exponent with a random significand and sign
    return from_bits((any_bits(rng) & 0x807fffffu) | (static_cast<uint32_t>(exponent + 127) << 23));
  };
  std::uniform_int_distribution<int> exponent(-100, -26);
  int64_t mismatches = 0;
  auto compare = [&](float a, float b, float c) {
    const float fma_emulated = emulator::fma_daz_ftz(a, b, c), fma_cpu = cpu_fma_daz_ftz(a, b, c);
    const float add_emulated = emulator::add_daz_ftz(a, c), add_cpu = cpu_add_daz_ftz(a, c);
    if (!same_float(fma_emulated, fma_cpu) || !same_float(add_emulated, add_cpu)) {
      if (++mismatches <= 5)
        FAIL_CHECK("a " << a << " b " << b << " c " << c << ": fma " << fma_emulated << " vs " << fma_cpu << ", add "
                        << add_emulated << " vs " << add_cpu);
    }
  };
  for (int i = 0; i < 300000; ++i) {
    // Any bit patterns (NaN, inf, denormals), then products and sums near FLT_MIN, where DAZ, FTZ
    // and the tininess rule decide.
    compare(from_bits(any_bits(rng)), from_bits(any_bits(rng)), from_bits(any_bits(rng)));
    const int e = exponent(rng);
    const float a = near_power(e), b = near_power(-126 - e + (i % 5) - 2);
    const float product = static_cast<float>(static_cast<double>(a) * b);
    const float c = (i % 3 == 0) ? -product : near_power(-126 + (i % 7) - 3);
    compare(a, b, c);
    compare(a, b, std::nextafter(-product, i % 2 ? INFINITY : -INFINITY));
  }
  // The hand-made tininess cases of the TDPBF16PS test.
  compare(0x3p-76f, -0x1p-76f, 0x1p-126f);
  compare(0x1p-76f, -0x1p-76f, 0x1p-126f);
  CHECK(mismatches == 0);
}

// ---- the kernels, emulated instantiation, against float64 / int64 references -------------------------
namespace {

using Bf16Kernel = std::function<void(const cpu::AmxBf16GemmArgs&)>;
using Int8Kernel = std::function<void(const cpu::Int8GemmArgs&)>;

struct Dims {
  int64_t m, n, k;
};
const std::vector<Dims> kShapes = {{1, 1, 1},   {0, 3, 5},    {3, 0, 5},   {2, 3, 0},    {16, 16, 64}, {17, 33, 65},
                                   {33, 17, 63}, {5, 40, 1},   {40, 5, 130}, {64, 48, 100}, {31, 1, 33},  {1, 70, 31}};

double activate(UnaryOp op, double z) {
  switch (op) {
    case UnaryOp::relu: return z > 0 ? z : 0;
    case UnaryOp::gelu_erf: return 0.5 * z * (1 + std::erf(z / std::sqrt(2.0)));
    case UnaryOp::gelu_tanh: return 0.5 * z * (1 + std::tanh(std::sqrt(2 / M_PI) * (z + 0.044715 * z * z * z)));
    case UnaryOp::silu: return z / (1 + std::exp(-z));
    default: return z;
  }
}

// One bf16 product: a (M x K) row-major or transposed, b (K x N) row-major or transposed (a
// weight's W^T), out strided or transposed, bias per column / per row / none, an activation.
void check_bf16_kernel(const Bf16Kernel& kernel, Dims d, bool a_transposed, bool b_transposed, bool out_transposed,
                       int bias_kind, bool has_activation, UnaryOp activation, std::mt19937& rng,
                       const std::string& what) {
  INFO(what << ": " << d.m << " x " << d.n << " x " << d.k << (a_transposed ? ", A^T" : "") << (b_transposed ? ", B^T" : "")
            << (out_transposed ? ", out^T" : "") << ", bias " << bias_kind << ", activation "
            << (has_activation ? int(activation) : -1));
  std::uniform_real_distribution<float> value(-2, 2);
  const int64_t m = d.m, n = d.n, k = d.k;
  cpu::AmxBf16GemmArgs args;
  args.m = m, args.n = n, args.k = k;
  // A with a padded row stride (or stored transposed), B likewise (or stored as a weight [N, K]).
  std::vector<uint16_t> a(std::max<int64_t>({m * (k + 3), k * (m + 3), 1})), b(std::max<int64_t>({(k + 2) * n, k * (n + 2), 1}));
  for (auto& x : a) x = bf16_bits(value(rng));
  for (auto& x : b) x = bf16_bits(value(rng));
  args.a = a.data();
  if (a_transposed) args.a_row_stride = 1, args.a_col_stride = m + 3;  // A^T stored [K, M + 3]
  else args.a_row_stride = k + 3, args.a_col_stride = 1;
  args.b = b.data();
  if (b_transposed) args.b_k_stride = 1, args.b_n_stride = k + 2;  // W [N, K + 2]
  else args.b_k_stride = n + 2, args.b_n_stride = 1;
  const int64_t out_size = std::max<int64_t>({m * (n + 5), n * (m + 5), 1});
  std::vector<uint16_t> out(out_size + 8, 0x7fc1);  // a NaN sentinel: must survive outside out
  args.out = out.data();
  if (out_transposed) args.out_row_stride = 1, args.out_col_stride = m + 5;
  else args.out_row_stride = n + 5, args.out_col_stride = 1;
  std::vector<float> bias(std::max<int64_t>(std::max(m, n), 1));
  for (auto& x : bias) x = value(rng);
  if (bias_kind > 0) args.bias = bias.data(), args.bias_per_row = bias_kind == 2;
  args.has_activation = has_activation;
  args.activation = activation;
  kernel(args);

  std::vector<bool> written(out.size(), false);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double term = static_cast<double>(bf16_value(a[i * args.a_row_stride + p * args.a_col_stride])) *
                            bf16_value(b[p * args.b_k_stride + j * args.b_n_stride]);
        sum += term;
        magnitude += std::fabs(term);
      }
      if (args.bias) {
        const double add = args.bias_per_row ? bias[i] : bias[j];
        sum += add;
        magnitude += std::fabs(add);
      }
      const double expected = has_activation ? activate(activation, sum) : sum;
      // f32 sums of K exact products (and the bias): within (K + 2) 2^-24 sum|terms|; the activation's
      // slope is at most 1.13; one rounding to bf16.
      const double bound = 1.2 * 2.0 * static_cast<double>(k + 2) * 0x1p-24 * magnitude + 0x1p-8 * std::fabs(expected) + 1e-6;
      const int64_t at = i * args.out_row_stride + j * args.out_col_stride;
      written[at] = true;
      const double got = bf16_value(out[at]);
      if (!(std::fabs(got - expected) <= bound)) {
        FAIL_CHECK("[" << i << ", " << j << "]: got " << got << ", expected " << expected << " (bound " << bound << ")");
        return;
      }
    }
  for (size_t t = 0; t < out.size(); ++t)
    if (!written[t] && out[t] != 0x7fc1) {
      FAIL_CHECK("element " << t << " outside the output was written");
      return;
    }
}

struct Int8Setup {
  bool a_signed = false, a_transposed = false, b_kn = false;  // b_kn: b stored [K, N] (else a weight [N, K])
  bool per_channel = false, zero_points = false, bias = false;
  cpu::Int8GemmOutput output = cpu::Int8GemmOutput::s32;
};

// One int8 product; the result must equal, bit for bit, the exact int64 sum passed through the
// epilogue's f32 formula (gemm_int8.h), and gemm_int8's non-AMX path on this CPU.
void check_int8_kernel(const Int8Kernel& kernel, Dims d, const Int8Setup& s, std::mt19937& rng,
                       const std::string& what, const std::vector<uint8_t>* a_values = nullptr,
                       const std::vector<int8_t>* b_values = nullptr, int32_t a_zero_point = -1) {
  INFO(what << ": " << d.m << " x " << d.n << " x " << d.k << (s.a_signed ? ", s8 A" : ", u8 A")
            << (s.a_transposed ? ", A^T" : "") << (s.b_kn ? ", B [K, N]" : ", B [N, K]")
            << (s.per_channel ? ", per channel" : ", per tensor") << (s.zero_points ? ", zero points" : "")
            << (s.bias ? ", bias" : "") << ", output " << int(s.output));
  const int64_t m = d.m, n = d.n, k = d.k;
  std::uniform_int_distribution<int> byte(0, 255), small(-5, 5);
  cpu::Int8GemmArgs args;
  args.m = m, args.n = n, args.k = k;
  std::vector<uint8_t> a = a_values ? *a_values : std::vector<uint8_t>(std::max<int64_t>({m * (k + 3), k * (m + 3), 1}));
  if (!a_values)
    for (auto& x : a) x = static_cast<uint8_t>(byte(rng));
  args.a = a.data();
  args.a_is_signed = s.a_signed;
  if (a_values) args.a_row_stride = k, args.a_col_stride = 1;
  else if (s.a_transposed) args.a_row_stride = 1, args.a_col_stride = m + 3;
  else args.a_row_stride = k + 3, args.a_col_stride = 1;
  args.a_zero_point = a_zero_point >= 0 ? a_zero_point : s.zero_points ? (s.a_signed ? -3 : 7) : 0;
  args.a_scale = 0.05f;
  std::vector<int8_t> b = b_values ? *b_values : std::vector<int8_t>(std::max<int64_t>({(k + 2) * n, k * (n + 2), 1}));
  if (!b_values)
    for (auto& x : b) x = static_cast<int8_t>(byte(rng) - 128);
  args.b = b.data();
  if (b_values) args.b_n_stride = k, args.b_k_stride = 1;
  else if (s.b_kn) args.b_n_stride = 1, args.b_k_stride = n + 2;
  else args.b_n_stride = k + 2, args.b_k_stride = 1;
  std::vector<int32_t> zb(std::max<int64_t>(n, 1), 0);
  std::vector<float> scales(std::max<int64_t>(n, 1), 0.02f), bias(std::max<int64_t>(n, 1));
  if (s.zero_points)
    for (auto& x : zb) x = small(rng);
  if (s.per_channel)
    for (auto& x : scales) x = 0.001f * static_cast<float>(byte(rng) + 1);
  for (auto& x : bias) x = 0.5f * static_cast<float>(small(rng));
  args.b_zero_points = zb.data();
  args.b_zero_point_stride = s.per_channel ? 1 : 0;
  args.b_scales = scales.data();
  args.b_scale_stride = s.per_channel ? 1 : 0;
  args.bias = s.bias ? bias.data() : nullptr;
  args.output = s.output;
  args.out_scale = 0.25f;
  args.out_zero_point = s.output == cpu::Int8GemmOutput::u8 ? 100 : -7;
  const int64_t out_row_stride = n + 2;
  args.out_row_stride = out_row_stride;
  std::vector<uint8_t> out(std::max<int64_t>(m * out_row_stride, 1) * 4, 0xa5), vnni_out = out;
  args.out = out.data();
  kernel(args);
  cpu::Int8GemmArgs vnni_args = args;
  vnni_args.out = vnni_out.data();
  {  // gemm_int8 without any AMX (on an AMX CPU it would otherwise take the hardware kernel)
    const bool was = cpu::amx_emulation();
    cpu::set_amx_emulation(false);
    cpu::set_cpu_disabled("amx");
    cpu::gemm_int8(vnni_args);
    cpu::set_cpu_disabled("");
    cpu::set_amx_emulation(was);
  }
  CHECK(out == vnni_out);

  const float qmin = s.output == cpu::Int8GemmOutput::u8 ? 0.0f : -128.0f;
  const float qmax = s.output == cpu::Int8GemmOutput::u8 ? 255.0f : 127.0f;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const int64_t zbj = zb[s.per_channel ? j : 0];
      int64_t acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        const uint8_t raw = a[i * args.a_row_stride + p * args.a_col_stride];
        const int64_t av = s.a_signed ? int64_t{static_cast<int8_t>(raw)} : int64_t{raw};
        acc += (av - args.a_zero_point) * (int64_t{b[j * args.b_n_stride + p * args.b_k_stride]} - zbj);
      }
      REQUIRE(std::llabs(acc) < (int64_t{1} << 31));
      const int64_t at = i * out_row_stride + j;
      // gemm_int8's f32 epilogue: fma(f32(sum), a_scale * b_scale, bias), rounded once.
      const float real = std::fma(static_cast<float>(acc), args.a_scale * scales[s.per_channel ? j : 0],
                                  s.bias ? bias[j] : 0.0f);
      bool ok = true;
      switch (s.output) {
        case cpu::Int8GemmOutput::s32: ok = reinterpret_cast<const int32_t*>(out.data())[at] == acc; break;
        case cpu::Int8GemmOutput::f32: ok = to_bits(reinterpret_cast<const float*>(out.data())[at]) == to_bits(real); break;
        case cpu::Int8GemmOutput::u8:
          ok = out[at] == cpu::quantize_value(real, args.out_scale, static_cast<float>(args.out_zero_point), qmin, qmax);
          break;
        case cpu::Int8GemmOutput::i8:
          ok = static_cast<int8_t>(out[at]) ==
               cpu::quantize_value(real, args.out_scale, static_cast<float>(args.out_zero_point), qmin, qmax);
          break;
      }
      if (!ok) {
        FAIL_CHECK("[" << i << ", " << j << "]: exact sum " << acc << " not what the kernel wrote");
        return;
      }
    }
}

void bf16_suite(const Bf16Kernel& kernel, const std::string& name) {
  std::mt19937 rng(11);
  for (const Dims& d : kShapes)
    for (int layout = 0; layout < 8; ++layout)
      check_bf16_kernel(kernel, d, layout & 1, layout & 2, layout & 4, layout % 3, false, UnaryOp::relu, rng, name);
  for (UnaryOp op : {UnaryOp::relu, UnaryOp::gelu_erf, UnaryOp::gelu_tanh, UnaryOp::silu})
    for (int bias_kind : {0, 1, 2}) {
      check_bf16_kernel(kernel, {33, 17, 63}, false, true, false, bias_kind, true, op, rng, name);
      check_bf16_kernel(kernel, {2, 3, 0}, false, false, false, bias_kind, true, op, rng, name + " K = 0");
    }
  // Large enough for two threads (M N K >= 2^23).
  check_bf16_kernel(kernel, {160, 200, 270}, false, true, false, 1, true, UnaryOp::gelu_erf, rng, name + " threaded");
}

void int8_suite(const Int8Kernel& kernel, const std::string& name) {
  std::mt19937 rng(13);
  for (const Dims& d : kShapes)
    for (int variant = 0; variant < 8; ++variant) {
      Int8Setup s;
      s.a_signed = variant & 1;
      s.a_transposed = variant & 2;
      s.b_kn = variant & 4;
      s.zero_points = variant % 3 != 0;
      s.per_channel = variant % 2 == 0;
      s.output = cpu::Int8GemmOutput::s32;
      check_int8_kernel(kernel, d, s, rng, name);
    }
  for (auto output : {cpu::Int8GemmOutput::f32, cpu::Int8GemmOutput::u8, cpu::Int8GemmOutput::i8})
    for (int variant = 0; variant < 4; ++variant) {
      Int8Setup s;
      s.output = output;
      s.per_channel = variant & 1;
      s.zero_points = variant & 2;
      s.bias = variant != 0;
      s.a_signed = variant == 3;
      // {13, 130, 70}: full 6 x 64 micro-tiles and a 2-column strip (gemm_int8's fused epilogue).
      for (Dims d : {Dims{17, 33, 65}, Dims{13, 130, 70}, Dims{1, 5, 1}, Dims{3, 4, 0}}) check_int8_kernel(kernel, d, s, rng, name);
    }
  // The raw sum of a b wraps in s32 (255 * -128 * 65793 < -2^31) while the exact result, with
  // za = 255, is 0: the largest K the op allows for u8 x s8.
  const int64_t k = 65793;
  const std::vector<uint8_t> a(k, 255);
  const std::vector<int8_t> b(k, -128);
  Int8Setup s;
  check_int8_kernel(kernel, {1, 1, k}, s, rng, name + " wrapping raw sums", &a, &b, 255);
  // Large enough for two threads.
  s.zero_points = s.per_channel = s.bias = true;
  s.output = cpu::Int8GemmOutput::u8;
  check_int8_kernel(kernel, {160, 200, 270}, s, rng, name + " threaded");
}

}  // namespace

TEST_CASE("amx bf16 GEMM, emulated: odd sizes, layouts and epilogues against float64", "[amx][gemm]") {
  bf16_suite(cpu::amx_emulated::gemm_bf16, "emulated");
}

TEST_CASE("amx int8 GEMM, emulated: exact sums, zero points, scales and every output", "[amx][gemm]") {
  int8_suite(cpu::amx_emulated::gemm_int8, "emulated");
}

// ---- the drivers' hooks, with the emulator switched on ------------------------------------------------
namespace {

// got = act(a @ b + bias) for bf16 a [Z, M, K] and b [Z, K, N] (expanded to one batch shape); the
// tile sums of pairs of products add one rounding to the bound of test_gemm.cpp's check.
void check_bf16_product(const Tensor& got, const Tensor& a, const Tensor& b, const Tensor& bias, Activation activation,
                        const std::string& what) {
  REQUIRE(got.dtype() == DType::bf16);
  test::check_product(got, a, b, bias, activation, what, /*rounding_terms=*/2);
}

}  // namespace

TEST_CASE("amx hooks: bf16 matmul and linear reach the emulated AMX kernel with the drivers' strides", "[amx][gemm]") {
  EmulationGuard emulation;
  REQUIRE(cpu::amx_bf16_gemm_enabled());
  // Proof that the hook is taken: the emulator executed tile instructions, and only TDPBF16PS's
  // even / odd partial sums give 1 here (exact: 2, one f32 sum in k order: 0).
  const uint64_t before = emulator::executed_dot_products();
  const Tensor row = tensor({{0x1p24, 1.0, 1.0, -0x1p24}}, DType::bf16);
  CHECK(matmul(row, ones({4, 1}, {.dtype = DType::bf16})).item<double>() == 1.0);
  CHECK(emulator::executed_dot_products() > before);

  const DType dtype = DType::bf16;
  const Tensor base = random_tensor({65, 70}, dtype), other = random_tensor({70, 33}, dtype);
  auto check = [&](const Tensor& a, const Tensor& b, const std::string& what) {
    check_bf16_product(matmul(a, b), a, b, Tensor(), Activation::none, what);
  };
  check(base.t(), base, "a^T a");
  check(base, base.t(), "a a^T");
  check(base.slice(0, 1, 65, 3).slice(1, 0, 70, 2), other.slice(0, 0, 70, 2), "strided slices");
  check(random_tensor({257, 33}, dtype), random_tensor({3, 33}, dtype).t(), "tall thin (computed transposed)");
  const Tensor a = random_tensor({3, 1, 33, 65}, dtype), b = random_tensor({4, 65, 31}, dtype);
  check_bf16_product(matmul(a, b), a.expand({3, 4, 33, 65}), b.expand({3, 4, 65, 31}), Tensor(), Activation::none,
                     "broadcast batch");
  const Tensor permuted = random_tensor({7, 2, 31, 9}, dtype).transpose(0, 1);
  const Tensor right = random_tensor({9, 33}, dtype);
  check_bf16_product(matmul(permuted, right), permuted, right.expand({2, 7, 9, 33}), Tensor(), Activation::none,
                     "permuted batch");
  const Tensor zeros = matmul(empty({3, 0}, {.dtype = dtype}), empty({0, 4}, {.dtype = dtype}));
  check_matches(zeros, reference::RefTensor{{3, 4}, std::vector<double>(12, 0.0)}, "K = 0");
  CHECK(matmul(empty({0, 3}, {.dtype = dtype}), empty({3, 4}, {.dtype = dtype})).shape() == Shape{0, 4});
  for (Activation activation : {Activation::none, Activation::relu, Activation::gelu, Activation::gelu_tanh, Activation::silu})
    for (const auto& [rows, in, out] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{33, 65, 31}, {257, 33, 3}}) {
      const Tensor x = random_tensor({rows, in}, dtype), w = random_tensor({out, in}, dtype), bias = random_tensor({out}, dtype);
      check_bf16_product(linear(x, w, bias, activation), x, w.t(), bias, activation,
                         "linear " + std::to_string(rows) + "x" + std::to_string(in) + "->" + std::to_string(out));
    }
}

TEST_CASE("amx hooks: gemm_int8 and quantized_matmul reach the emulated AMX kernel", "[amx][gemm]") {
  EmulationGuard emulation;
  CHECK(cpu::gemm_int8_path() == std::string_view("amx_int8 (emulated)"));
  std::mt19937 rng(17);
  Int8Setup s;
  s.zero_points = s.per_channel = s.bias = true;
  s.output = cpu::Int8GemmOutput::f32;
  // Through the driver: cpu::gemm_int8 with emulation on takes the AMX hook (tile instructions
  // executed; the results are bit-identical to the other paths, so they cannot tell).
  const uint64_t before = emulator::executed_dot_products();
  check_int8_kernel(cpu::gemm_int8, {33, 17, 63}, s, rng, "gemm_int8 hook");
  CHECK(emulator::executed_dot_products() > before);
  s.a_transposed = s.a_signed = true;
  s.output = cpu::Int8GemmOutput::i8;
  check_int8_kernel(cpu::gemm_int8, {5, 40, 130}, s, rng, "gemm_int8 hook, s8 A^T");
  // The op, against itself with the emulator off.
  const Tensor x = random_tensor({9, 70}, DType::u8), w = random_tensor({70, 21}, DType::i8);
  QuantizedMatmulOptions options;
  options.a_scale = 0.1, options.a_zero_point = 3, options.b_scale = 0.05, options.b_zero_point = -2;
  options.bias = random_tensor({21}, DType::f32);
  const uint64_t before_op = emulator::executed_dot_products();
  const Tensor with_amx = quantized_matmul(x, w, options);
  CHECK(emulator::executed_dot_products() > before_op);
  cpu::set_amx_emulation(false);
  CHECK(cpu::gemm_int8_path() != std::string_view("amx_int8 (emulated)"));
  const uint64_t before_off = emulator::executed_dot_products();
  const Tensor without = quantized_matmul(x, w, options);
  CHECK(emulator::executed_dot_products() == before_off);
  cpu::set_amx_emulation(true);
  check_matches(with_amx, reference::from_tensor(without), Tolerance{0, 0}, "quantized_matmul, AMX emulated vs not");
}

// ---- the hardware instantiation's machine code, tile instructions trapped and emulated ---------------
namespace {

// On a CPU without AMX every tile instruction raises #UD (SIGILL). The handler decodes the ones the
// kernels use (VEX map 0F38; Intel SDM encodings), runs them on the emulator with the operands read
// from the interrupted thread's registers, and resumes after the instruction.
std::atomic<int64_t> trapped{0};
std::atomic<bool> trap_failed{false};
char trap_message[256];

int64_t register_value(const ucontext_t* context, int number) {
  static constexpr int kGregs[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                                     REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};
  return context->uc_mcontext.gregs[kGregs[number]];
}

// Returns the instruction's length, or 0 when it is not one of the emulated tile instructions.
int emulate_tile_instruction(ucontext_t* context) {
  const uint8_t* ip = reinterpret_cast<const uint8_t*>(context->uc_mcontext.gregs[REG_RIP]);
  if (ip[0] != 0xc4 || (ip[1] & 0x1f) != 2) return 0;  // 3-byte VEX, map 0F38
  const int x = (ip[1] & 0x40) ? 0 : 8, b = (ip[1] & 0x20) ? 0 : 8;  // inverted VEX.X, VEX.B
  const int vvvv = (~ip[2] >> 3) & 0xf, pp = ip[2] & 3;
  if ((ip[2] & 0x84) != 0) return 0;  // W0, L0
  const uint8_t opcode = ip[3], modrm = ip[4];
  const int mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
  int length = 5;
  int64_t address = 0, stride = 0;
  bool rip_relative = false;
  if (mod != 3) {
    if (rm == 4) {  // SIB: the base (plus displacement) is the address, the scaled index the stride
      const uint8_t sib = ip[length++];
      const int index = ((sib >> 3) & 7) | x, base = (sib & 7) | b;
      if (index != 4) stride = register_value(context, index) << (sib >> 6);
      if ((sib & 7) == 5 && mod == 0) {
        int32_t displacement;
        std::memcpy(&displacement, ip + length, 4);
        address = displacement;
        length += 4;
      } else {
        address = register_value(context, base);
      }
    } else if (rm == 5 && mod == 0) {
      rip_relative = true;
    } else {
      address = register_value(context, rm | b);
    }
    if (mod == 1) address += static_cast<int8_t>(ip[length++]);
    if (mod == 2 || rip_relative) {
      int32_t displacement;
      std::memcpy(&displacement, ip + length, 4);
      address += displacement;
      length += 4;
    }
    if (rip_relative) address += reinterpret_cast<int64_t>(ip) + length;
  }
  void* memory = reinterpret_cast<void*>(address);
  if (opcode == 0x49 && pp == 0 && mod != 3 && reg == 0) {  // LDTILECFG m512
    amx::TileConfig config;
    std::memcpy(&config, memory, sizeof config);
    emulator::load_config(config);
  } else if (opcode == 0x49 && pp == 0 && modrm == 0xc0) {  // TILERELEASE
    emulator::release();
  } else if (opcode == 0x49 && pp == 3 && mod == 3 && rm == 0) {  // TILEZERO tmm
    emulator::zero(reg);
  } else if (opcode == 0x4b && (pp == 3 || pp == 1) && mod != 3 && rm == 4) {  // TILELOADD(T1) tmm, sibmem
    emulator::load(reg, memory, stride);
  } else if (opcode == 0x4b && pp == 2 && mod != 3 && rm == 4) {  // TILESTORED sibmem, tmm
    emulator::store(reg, memory, stride);
  } else if (opcode == 0x5c && pp == 2 && mod == 3) {  // TDPBF16PS tmm(reg) += tmm(rm) * tmm(vvvv)
    emulator::dpbf16ps(reg, rm, vvvv);
  } else if (opcode == 0x5e && pp == 1 && mod == 3) {  // TDPBUSD
    emulator::dpbusd(reg, rm, vvvv);
  } else {
    return 0;
  }
  return length;
}

void on_illegal_instruction(int, siginfo_t*, void* raw_context) {
  ucontext_t* context = static_cast<ucontext_t*>(raw_context);
  int length = 0;
  try {
    length = emulate_tile_instruction(context);
  } catch (const std::exception& error) {  // an emulated #UD / #GP: record it, skip the instruction
    std::snprintf(trap_message, sizeof trap_message, "%s", error.what());
    trap_failed = true;
    length = -1;
  }
  if (length == 0) {  // not a tile instruction: let the default action report it
    signal(SIGILL, SIG_DFL);
    return;
  }
  if (length < 0) length = 5;  // (a faulting instruction is not resumed correctly; the test fails anyway)
  ++trapped;
  context->uc_mcontext.gregs[REG_RIP] += length;
}

struct TrapTileInstructions {
  struct sigaction previous {};
  TrapTileInstructions() {
    struct sigaction action {};
    action.sa_sigaction = on_illegal_instruction;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    sigaction(SIGILL, &action, &previous);
  }
  ~TrapTileInstructions() { sigaction(SIGILL, &previous, nullptr); }
};

}  // namespace

TEST_CASE("amx kernels: the hardware instantiation's code, each tile instruction trapped and emulated",
          "[amx][gemm][trap]") {
  const cpu::CpuFeatures f = cpu::detected_cpu_features();
  if (f.amx_bf16 || f.amx_int8) {
    WARN("NOT RUN: this CPU executes tile instructions itself (see the hardware test)");
    return;
  }
  TrapTileInstructions trap;
  trapped = 0;
  bf16_suite(cpu::amx_hardware::gemm_bf16, "hardware code, trapped");
  int8_suite(cpu::amx_hardware::gemm_int8, "hardware code, trapped");
  CHECK_FALSE(trap_failed.load());
  if (trap_failed) FAIL_CHECK("emulated fault: " << trap_message);
  INFO(trapped.load() << " tile instructions trapped");
  CHECK(trapped.load() > 1000);
}

// ---- the hardware instantiation: only where the CPU has AMX ------------------------------------------
TEST_CASE("amx kernels on AMX hardware against the same references (only on CPUs with AMX)", "[amx][gemm][hardware]") {
  const cpu::CpuFeatures f = cpu::cpu_features();
  if (!f.amx_bf16)
    WARN("NOT RUN: the AMX-BF16 hardware kernel was not tested, this CPU cannot run it: "
         << cpu::describe_cpu_features());
  if (!f.amx_int8)
    WARN("NOT RUN: the AMX-INT8 hardware kernel was not tested, this CPU cannot run it: "
         << cpu::describe_cpu_features());
  if (f.amx_bf16) {
    bf16_suite(cpu::amx_hardware::gemm_bf16, "hardware");
    // Hardware against the emulator, element for element. The emulator follows the SDM's
    // pseudo-code; a difference means the silicon rounds otherwise (reported, not failed: the
    // reference check above is the test of the kernel).
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> value(-2, 2);
    const int64_t m = 45, n = 37, k = 300;
    std::vector<uint16_t> a(m * k), b(k * n), hardware(m * n), emulated(m * n);
    for (auto& x : a) x = bf16_bits(value(rng));
    for (auto& x : b) x = bf16_bits(value(rng));
    cpu::AmxBf16GemmArgs args{.m = m, .n = n, .k = k, .a = a.data(), .a_row_stride = k, .b = b.data(), .b_k_stride = n,
                              .out = hardware.data(), .out_row_stride = n};
    cpu::amx_hardware::gemm_bf16(args);
    args.out = emulated.data();
    cpu::amx_emulated::gemm_bf16(args);
    int64_t differences = 0;
    for (int64_t t = 0; t < m * n; ++t) differences += hardware[t] != emulated[t];
    if (differences) WARN(differences << " of " << m * n << " bf16 results differ between the AMX hardware and the emulator");
  }
  if (f.amx_int8) int8_suite(cpu::amx_hardware::gemm_int8, "hardware");
}
