#pragma once
// The tile layer of amx_tiles.h on the real instructions (<immintrin.h>, GCC >= 11). Included only
// by kernels/cpu/gemm_amx.cpp; every function carries the AMX target attribute, so the rest of the
// build stays x86-64-v2, and it may run only where cpu_features().amx_bf16 / amx_int8 say so (the
// OS granted the tile state: dispatch.cpp). Never run on AMX hardware: the machine this was written
// on has none, and its tests execute this code only with each tile instruction trapped (SIGILL) and
// computed by the emulator (tests/kernels/test_gemm_amx.cpp).
//
// GCC's tile intrinsics are macros that paste the tile number into the instruction text
// (%%tmm"#dst"), so a tile must be a literal token: the templates below map each tile argument to
// one literal. The dot products list the operand triples the kernels use (C 0-3, A 4-5, B 6-7).
// _tile_loadd declares no memory input to the compiler: the kernels put a compiler barrier
// between writing a packed panel and loading it.
#include <immintrin.h>

#include "keel/kernels/cpu/amx_tiles.h"

#define KEEL_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,amx-int8")))

#define KEEL_AMX_ONE_TILE(T, STATEMENT)                                                             \
  if constexpr (T == 0) { STATEMENT(0); }                                                          \
  else if constexpr (T == 1) { STATEMENT(1); }                                                     \
  else if constexpr (T == 2) { STATEMENT(2); }                                                     \
  else if constexpr (T == 3) { STATEMENT(3); }                                                     \
  else if constexpr (T == 4) { STATEMENT(4); }                                                     \
  else if constexpr (T == 5) { STATEMENT(5); }                                                     \
  else if constexpr (T == 6) { STATEMENT(6); }                                                     \
  else { static_assert(T == 7, "AMX palette 1 has tiles 0..7"); STATEMENT(7); }

#define KEEL_AMX_DOT_CASE(INSTRUCTION, c, a, b) else if constexpr (C == c && A == a && B == b) { INSTRUCTION(c, a, b); }
#define KEEL_AMX_DOT(INSTRUCTION)                                                                  \
  if constexpr (false) {}                                                                          \
  KEEL_AMX_DOT_CASE(INSTRUCTION, 0, 4, 6) KEEL_AMX_DOT_CASE(INSTRUCTION, 1, 4, 7)                  \
  KEEL_AMX_DOT_CASE(INSTRUCTION, 2, 5, 6) KEEL_AMX_DOT_CASE(INSTRUCTION, 3, 5, 7)                  \
  else static_assert(C < 0, "add this tile triple to KEEL_AMX_DOT")

namespace keel::cpu::amx {

struct HardwareTiles {
  static constexpr bool kHardware = true;
  KEEL_AMX_TARGET static void configure(const TileConfig& config) { _tile_loadconfig(&config); }
  KEEL_AMX_TARGET static void release() { _tile_release(); }
  template <int T> KEEL_AMX_TARGET static inline __attribute__((always_inline)) void zero() {
#define KEEL_AMX_ZERO(t) _tile_zero(t)
    KEEL_AMX_ONE_TILE(T, KEEL_AMX_ZERO)
#undef KEEL_AMX_ZERO
  }
  template <int T> KEEL_AMX_TARGET static inline __attribute__((always_inline)) void load(const void* base, int64_t stride) {
#define KEEL_AMX_LOAD(t) _tile_loadd(t, base, stride)
    KEEL_AMX_ONE_TILE(T, KEEL_AMX_LOAD)
#undef KEEL_AMX_LOAD
  }
  template <int T> KEEL_AMX_TARGET static inline __attribute__((always_inline)) void store(void* base, int64_t stride) {
#define KEEL_AMX_STORE(t) _tile_stored(t, base, stride)
    KEEL_AMX_ONE_TILE(T, KEEL_AMX_STORE)
#undef KEEL_AMX_STORE
  }
  template <int C, int A, int B> KEEL_AMX_TARGET static inline __attribute__((always_inline)) void dp_bf16() {
    KEEL_AMX_DOT(_tile_dpbf16ps);
  }
  template <int C, int A, int B> KEEL_AMX_TARGET static inline __attribute__((always_inline)) void dp_u8s8() {
    KEEL_AMX_DOT(_tile_dpbusd);
  }
};

}  // namespace keel::cpu::amx
