// A software model of the AMX tile instructions the GEMM kernels use (semantics: amx_tiles.h,
// from the Intel SDM pseudo-code). Plain C++: it runs on any x86-64 CPU, so that the kernels'
// emulated instantiation can be tested where no AMX exists. Misuse that faults on hardware (#UD,
// #GP) throws keel::Error here.
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "keel/core/error.h"
#include "keel/kernels/cpu/amx_tiles.h"

namespace keel::cpu::amx::emulator {

namespace {

struct RegisterFile {
  TileConfig config;  // palette 0: not configured (INIT state)
  alignas(64) uint8_t tiles[kTileCount][kTileRows][kTileBytes] = {};
};
thread_local RegisterFile state;
std::atomic<uint64_t> dot_products{0};

void clear() {
  state.config = TileConfig{};
  std::memset(state.tiles, 0, sizeof state.tiles);
}

// The checks every tile operand goes through: #UD when tiles are not configured or the tile is
// not part of the configuration.
void check_tile(int tile, const char* instruction) {
  if (state.config.palette != 1) fail("[amx emulator] ", instruction, " with no tile configuration (#UD)");
  if (tile < 0 || tile >= kTileCount) fail("[amx emulator] ", instruction, ": no tile ", tile, " (#UD)");
  if (state.config.rows[tile] == 0) fail("[amx emulator] ", instruction, ": tile ", tile, " is not configured (#UD)");
  if (state.config.colsb[tile] % 4 != 0)
    fail("[amx emulator] ", instruction, ": tile ", tile, " has ", state.config.colsb[tile], " bytes per row, not a multiple of 4 (#UD)");
}

// The shape checks of TDP*: C (m x n) += A (m x k) B (k x n), with A's rows of k dwords and B's rows
// of n dwords.
void check_dot(int dst, int src1, int src2, const char* instruction) {
  if (dst == src1 || dst == src2 || src1 == src2)
    fail("[amx emulator] ", instruction, " needs three different tiles, got ", dst, ", ", src1, ", ", src2, " (#UD)");
  check_tile(dst, instruction);
  check_tile(src1, instruction);
  check_tile(src2, instruction);
  const TileConfig& c = state.config;
  if (c.colsb[dst] != c.colsb[src2] || c.rows[dst] != c.rows[src1] || c.colsb[src1] / 4 != c.rows[src2])
    fail("[amx emulator] ", instruction, ": tile shapes do not multiply: C ", int(c.rows[dst]), " x ", c.colsb[dst],
         " bytes, A ", int(c.rows[src1]), " x ", c.colsb[src1], " bytes, B ", int(c.rows[src2]), " x ", c.colsb[src2],
         " bytes (#UD)");
}

// Zeroes what lies beyond the configured rows and bytes of a tile written by an instruction.
void zero_outside(int tile) {
  const int rows = state.config.rows[tile], bytes = state.config.colsb[tile];
  for (int r = 0; r < kTileRows; ++r) {
    const int keep = r < rows ? bytes : 0;
    std::memset(state.tiles[tile][r] + keep, 0, kTileBytes - keep);
  }
}

float daz(float x) { return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x; }

// FTZ on a result r = round(x) computed with gradual underflow. x86 detects tininess after
// rounding: x is tiny when x rounded to 24 bits with an unbounded exponent is below FLT_MIN in
// magnitude. A subnormal r means x is tiny. r = +-FLT_MIN is ambiguous (x just below FLT_MIN can
// round up to FLT_MIN on the subnormal grid while its 24-bit rounding stays below), so there
// `scaled` recomputes x * 2^64, where the same rounding happens in the normal range.
template <typename Scaled> float flush_tiny(float r, Scaled scaled) {
  const float magnitude = std::fabs(r);
  if (!(magnitude <= FLT_MIN) || magnitude == 0.0f) return r;  // normal, zero, inf or NaN
  if (magnitude < FLT_MIN) return std::copysign(0.0f, r);
  return std::fabs(scaled()) < 0x1p-62f ? std::copysign(0.0f, r) : r;
}

float bf16_at(const uint8_t* row, int index) {
  uint16_t bits;
  std::memcpy(&bits, row + 2 * index, 2);
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;  // make_fp32: the bf16 in the upper half
  float value;
  std::memcpy(&value, &wide, 4);
  return value;
}

}  // namespace

// The scalings are exact in the ambiguous case: a non-zero |x| < 2^-125 needs a last bit of c or
// of a b (24- and 48-bit significands) at or below 2^-125, so |c| and |a b| are below about 2^-77,
// and with a, b normal (DAZ) |a|, |b| < 2^49: nothing overflows.
float fma_daz_ftz(float a, float b, float c) {
  a = daz(a);
  b = daz(b);
  c = daz(c);
  return flush_tiny(std::fma(a, b, c), [&] { return std::fma(a * 0x1p32f, b * 0x1p32f, c * 0x1p64f); });
}

float add_daz_ftz(float a, float b) {
  a = daz(a);
  b = daz(b);
  return flush_tiny(a + b, [&] { return a * 0x1p64f + b * 0x1p64f; });
}

void load_config(const TileConfig& config) {
  if (config.palette == 0) return clear();
  if (config.palette != 1) fail("[amx emulator] LDTILECFG: palette ", int(config.palette), " is not supported (#GP)");
  uint8_t bytes[64];
  std::memcpy(bytes, &config, 64);
  for (int i = 2; i < 64; ++i) {
    const bool reserved = i < 16 || (i >= 32 && i < 48) || i >= 56;
    if (reserved && bytes[i] != 0) fail("[amx emulator] LDTILECFG: reserved byte ", i, " is not zero (#GP)");
  }
  for (int t = 0; t < kTileCount; ++t) {
    if (config.rows[t] > kTileRows || config.colsb[t] > kTileBytes || (config.rows[t] == 0) != (config.colsb[t] == 0))
      fail("[amx emulator] LDTILECFG: tile ", t, " of ", int(config.rows[t]), " rows x ", config.colsb[t],
           " bytes is not valid for palette 1 (#GP)");
  }
  clear();
  state.config = config;
  state.config.start_row = 0;
}

void release() { clear(); }

uint64_t executed_dot_products() { return dot_products.load(std::memory_order_relaxed); }

bool configured() { return state.config.palette == 1; }

void load(int tile, const void* base, int64_t stride) {
  check_tile(tile, "TILELOADD");
  const int rows = state.config.rows[tile], bytes = state.config.colsb[tile];
  for (int r = 0; r < rows; ++r) std::memcpy(state.tiles[tile][r], static_cast<const uint8_t*>(base) + r * stride, bytes);
  zero_outside(tile);
}

void store(int tile, void* base, int64_t stride) {
  check_tile(tile, "TILESTORED");
  const int rows = state.config.rows[tile], bytes = state.config.colsb[tile];
  for (int r = 0; r < rows; ++r) std::memcpy(static_cast<uint8_t*>(base) + r * stride, state.tiles[tile][r], bytes);
}

void zero(int tile) {
  check_tile(tile, "TILEZERO");
  std::memset(state.tiles[tile], 0, sizeof state.tiles[tile]);
}

void dpbf16ps(int dst, int src1, int src2) {
  check_dot(dst, src1, src2, "TDPBF16PS");
  dot_products.fetch_add(1, std::memory_order_relaxed);
  const int rows = state.config.rows[dst];
  const int columns = state.config.colsb[dst] / 4;  // n: f32 outputs per row
  const int pairs = state.config.rows[src2];        // k: bf16 pairs per dot product
  for (int m = 0; m < rows; ++m) {
    float temp[2 * kTileBytes / 4] = {};  // temp1[2n] and temp1[2n+1]: even and odd products
    for (int k = 0; k < pairs; ++k)
      for (int n = 0; n < columns; ++n)
        for (int e = 0; e < 2; ++e)
          temp[2 * n + e] = fma_daz_ftz(bf16_at(state.tiles[src1][m], 2 * k + e), bf16_at(state.tiles[src2][k], 2 * n + e),
                                        temp[2 * n + e]);
    for (int n = 0; n < columns; ++n) {
      float c;
      std::memcpy(&c, state.tiles[dst][m] + 4 * n, 4);
      c = add_daz_ftz(c, add_daz_ftz(temp[2 * n], temp[2 * n + 1]));
      std::memcpy(state.tiles[dst][m] + 4 * n, &c, 4);
    }
  }
  zero_outside(dst);
}

void dpbusd(int dst, int src1, int src2) {
  check_dot(dst, src1, src2, "TDPBUSD");
  dot_products.fetch_add(1, std::memory_order_relaxed);
  const int rows = state.config.rows[dst];
  const int columns = state.config.colsb[dst] / 4;
  const int quads = state.config.rows[src2];
  for (int m = 0; m < rows; ++m)
    for (int k = 0; k < quads; ++k)
      for (int n = 0; n < columns; ++n) {
        const uint8_t* a = state.tiles[src1][m] + 4 * k;  // u8
        const uint8_t* b = state.tiles[src2][k] + 4 * n;  // s8
        int32_t sum = 0;  // four products of at most 255 * 128 in magnitude: exact
        for (int i = 0; i < 4; ++i) sum += int32_t{a[i]} * int32_t{static_cast<int8_t>(b[i])};
        uint32_t c;
        std::memcpy(&c, state.tiles[dst][m] + 4 * n, 4);
        c += static_cast<uint32_t>(sum);  // wraps modulo 2^32, as the instruction does
        std::memcpy(state.tiles[dst][m] + 4 * n, &c, 4);
      }
  zero_outside(dst);
}

}  // namespace keel::cpu::amx::emulator
