#pragma once
// AMX tiles, as the GEMM kernels of kernels/cpu/gemm_amx_kernels.inc use them: the tile
// configuration, a software emulator of the tile instructions, and the thin template layer the
// kernels are written against. The same kernel source is compiled twice (gemm_amx.cpp with the
// real instructions, layer amx_tiles_hardware.h; gemm_amx_emulated.cpp with EmulatedTiles below),
// so that the emulated instantiation, which runs on any x86-64 CPU, exercises the tiling, packing,
// edge handling and epilogues of the hardware one.
//
// What the emulator implements (Intel SDM vol. 2, "TDPBF16PS", "TDPBUSD", "LDTILECFG",
// "TILELOADD", "TILESTORED", "TILEZERO", "TILERELEASE"; palette 1: 8 tiles of at most 16 rows x 64
// bytes), one thread-local register file per thread, as the tile state is per thread on hardware:
//   LDTILECFG   palette 0 releases; palette 1 checks the reserved bytes and each tile's shape
//               (rows <= 16, colsb <= 64, both zero or both non-zero) and zeroes every tile;
//               anything else is #GP on hardware and keel::Error here.
//   TILELOADD   rows x colsb bytes from base + row * stride, the rest of the tile zeroed.
//   TILESTORED  rows x colsb bytes to base + row * stride.
//   TILEZERO    zeroes the tile.
//   TDPBUSD     C[m][n] += sum over k of the four u8(A[m].byte[4k+i]) * s8(B[k].byte[4n+i]), in
//               s32 with wrap-around (no saturation).
//   TDPBF16PS   per row m: two f32 accumulators per output column, temp[2n] and temp[2n+1], start
//               at 0 and take the even and odd bf16 products of all K pairs, each step one f32 FMA
//               (a single rounding); then C[m][n] = C[m][n] + (temp[2n] + temp[2n+1]). Every step
//               rounds to nearest even, treats denormal inputs as zero (DAZ) and flushes tiny
//               results to zero (FTZ, tininess detected after rounding, as x86 does), ignoring
//               MXCSR. NaN payloads are not modeled (a NaN result is some quiet NaN).
//   The operand checks of the dot products (#UD on hardware): three distinct configured tiles,
//   C.rows == A.rows, C.colsb == B.colsb, A.colsb == 4 * B.rows, all colsb multiples of 4.
// Not emulated: start_row (restarts after interrupts; always 0 here), TILELOADDT1's cache hint,
// the other AMX instructions, and the timing.
#include <cstdint>

namespace keel::cpu::amx {

constexpr int kTileCount = 8;   // palette 1
constexpr int kTileRows = 16;   // rows per tile, at most
constexpr int kTileBytes = 64;  // bytes per row, at most

// The 64-byte memory operand of LDTILECFG.
struct alignas(64) TileConfig {
  uint8_t palette = 0;
  uint8_t start_row = 0;
  uint8_t reserved0[14] = {};
  uint16_t colsb[kTileCount] = {};  // bytes per row of each tile
  uint8_t reserved1[16] = {};
  uint8_t rows[kTileCount] = {};
  uint8_t reserved2[8] = {};
};
static_assert(sizeof(TileConfig) == 64);

// Palette 1 with every tile at 16 rows x 64 bytes: the configuration of the GEMM kernels.
constexpr TileConfig full_tiles() {
  TileConfig config;
  config.palette = 1;
  for (int t = 0; t < kTileCount; ++t) {
    config.colsb[t] = kTileBytes;
    config.rows[t] = kTileRows;
  }
  return config;
}

// ---- the software emulator (kernels/cpu/amx_emulator.cpp) ---------------------------------------
namespace emulator {
void load_config(const TileConfig& config);            // LDTILECFG
void release();                                        // TILERELEASE
bool configured();                                     // palette 1 is loaded on this thread
void load(int tile, const void* base, int64_t stride);  // TILELOADD (stride in bytes)
void store(int tile, void* base, int64_t stride);       // TILESTORED
void zero(int tile);                                   // TILEZERO
void dpbf16ps(int dst, int src1, int src2);            // TDPBF16PS
void dpbusd(int dst, int src1, int src2);              // TDPBUSD
// TDPBF16PS and TDPBUSD executed so far by all threads (tests use it to see a kernel was reached).
uint64_t executed_dot_products();
// The rounding steps of TDPBF16PS, exposed for tests: a * b + c and a + b in f32 with one rounding
// to nearest even, denormal operands read as zero and tiny results flushed to zero.
float fma_daz_ftz(float a, float b, float c);
float add_daz_ftz(float a, float b);
}  // namespace emulator

// The tile layer the kernels are written against; tiles are template arguments because the
// hardware instructions encode them in the opcode.
struct EmulatedTiles {
  static constexpr bool kHardware = false;
  static void configure(const TileConfig& config) { emulator::load_config(config); }
  static void release() { emulator::release(); }
  template <int T> static void zero() { emulator::zero(T); }
  template <int T> static void load(const void* base, int64_t stride) { emulator::load(T, base, stride); }
  template <int T> static void store(void* base, int64_t stride) { emulator::store(T, base, stride); }
  template <int C, int A, int B> static void dp_bf16() { emulator::dpbf16ps(C, A, B); }
  template <int C, int A, int B> static void dp_u8s8() { emulator::dpbusd(C, A, B); }
};

}  // namespace keel::cpu::amx
