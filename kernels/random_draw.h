#pragma once
// Element i of a Philox draw (see core/rng.h), shared by the CPU and CUDA kernels so that both
// produce the same numbers.
//   uniform(i)  = U from lane i % 4 of block offset + i / 4, scaled to [low, high), where U keeps
//                 as many bits as the dtype has significand digits (f32 24, f16 11, bf16 8), so
//                 that rounding to the dtype can never reach `high` (PyTorch does the same);
//                 f64 takes 53 of the 64 bits of lanes (0,1) or (2,3) of block offset + i / 2
//   normal(i)   = Box-Muller of lanes (0,1) or (2,3) of block offset + i / 4:
//                 r = sqrt(-2 ln(1 - u0)), theta = 2 pi u1; even i -> r cos theta, odd -> r sin theta
//   integer(i)  = low + (64 bits from lanes (0,1) or (2,3) of block offset + i / 2) mod (high - low)
#include <cmath>

#include "keel/core/rng.h"

namespace keel {

// What a draw produces; uniform draws name their significand width.
enum RandomKind : int {
  kRandomUniform24 = 0,  // f32 (and the integer / default case)
  kRandomNormal = 1,
  kRandomInteger = 2,
  kRandomUniform53 = 3,  // f64
  kRandomUniform11 = 4,  // f16
  kRandomUniform8 = 5,   // bf16
};

// a + b * c rounded twice, never fused into one FMA (nvcc contracts by default, the host
// build does not), so that CPU and CUDA draws are bit-identical.
KEEL_HOST_DEVICE inline double add_product(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, __dmul_rn(b, c));
#else
  return a + b * c;
#endif
}

// Elements per Philox block: 2 for the kinds that take 64 bits per element, else 4.
KEEL_HOST_DEVICE inline int elements_per_block(int kind) {
  return kind == kRandomInteger || kind == kRandomUniform53 ? 2 : 4;
}

// Element i from the four lanes of its block (block offset + i / elements_per_block(kind)).
KEEL_HOST_DEVICE inline double element_from_lanes(int kind, double a, double b, const uint32_t lanes[4], int64_t i) {
  if (kind == kRandomUniform24 || kind == kRandomUniform11 || kind == kRandomUniform8) {
    const int digits = kind == kRandomUniform24 ? 24 : kind == kRandomUniform11 ? 11 : 8;
    const double scale = kind == kRandomUniform24 ? 0x1p-24 : kind == kRandomUniform11 ? 0x1p-11 : 0x1p-8;  // 2^-digits
    const double u = static_cast<double>(lanes[i % 4] >> (32 - digits)) * scale;
    return add_product(a, b - a, u);
  }
  if (kind == kRandomUniform53) {
    const int pair = static_cast<int>(i % 2) * 2;
    const uint64_t bits = (static_cast<uint64_t>(lanes[pair]) << 32) | lanes[pair + 1];
    const double u = static_cast<double>(bits >> 11) * 1.1102230246251565404e-16;  // 2^-53
    return add_product(a, b - a, u);
  }
  if (kind == kRandomNormal) {
    const int pair = static_cast<int>((i % 4) / 2) * 2;
    const float u0 = uniform_from_bits(lanes[pair]);
    const float u1 = uniform_from_bits(lanes[pair + 1]);
    const float radius = sqrtf(-2.0f * logf(1.0f - u0));
    const float theta = 6.28318530717958647692f * u1;
    const float z = (i % 2 == 0) ? radius * cosf(theta) : radius * sinf(theta);
    return add_product(a, b, static_cast<double>(z));
  }
  const int pair = static_cast<int>(i % 2) * 2;
  const uint64_t bits = (static_cast<uint64_t>(lanes[pair]) << 32) | lanes[pair + 1];
  const uint64_t range = static_cast<uint64_t>(b - a);
  return a + static_cast<double>(bits % range);
}

KEEL_HOST_DEVICE inline double draw_element(int kind, double a, double b, PhiloxState state, int64_t i) {
  uint32_t lanes[4];
  philox4x32_10(state.seed, state.offset + static_cast<uint64_t>(i) / elements_per_block(kind), lanes);
  return element_from_lanes(kind, a, b, lanes, i);
}

// Philox blocks a draw of `count` elements uses.
inline uint64_t draw_blocks(int kind, int64_t count) {
  const uint64_t per_block = static_cast<uint64_t>(elements_per_block(kind));
  return (static_cast<uint64_t>(count) + per_block - 1) / per_block;
}

}  // namespace keel
