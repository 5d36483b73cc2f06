#pragma once
// Element i of a Philox draw (see core/rng.h), shared by the CPU and CUDA kernels so that both
// produce the same numbers.
//   uniform(i)  = U from lane i % 4 of block offset + i / 4, scaled to [low, high)
//   normal(i)   = Box-Muller of lanes (0,1) or (2,3) of block offset + i / 4:
//                 r = sqrt(-2 ln(1 - u0)), theta = 2 pi u1; even i -> r cos theta, odd -> r sin theta
//   integer(i)  = low + (64 bits from lanes (0,1) or (2,3) of block offset + i / 2) mod (high - low)
#include <cmath>

#include "keel/core/rng.h"

namespace keel {

KEEL_HOST_DEVICE inline double draw_element(int kind, double a, double b, PhiloxState state, int64_t i) {
  uint32_t lanes[4];
  if (kind == 0) {
    philox4x32_10(state.seed, state.offset + static_cast<uint64_t>(i) / 4, lanes);
    const float u = uniform_from_bits(lanes[i % 4]);
    return a + (b - a) * static_cast<double>(u);
  }
  if (kind == 1) {
    philox4x32_10(state.seed, state.offset + static_cast<uint64_t>(i) / 4, lanes);
    const int pair = static_cast<int>((i % 4) / 2) * 2;
    const float u0 = uniform_from_bits(lanes[pair]);
    const float u1 = uniform_from_bits(lanes[pair + 1]);
    const float radius = sqrtf(-2.0f * logf(1.0f - u0));
    const float theta = 6.28318530717958647692f * u1;
    const float z = (i % 2 == 0) ? radius * cosf(theta) : radius * sinf(theta);
    return a + b * static_cast<double>(z);
  }
  philox4x32_10(state.seed, state.offset + static_cast<uint64_t>(i) / 2, lanes);
  const int pair = static_cast<int>(i % 2) * 2;
  const uint64_t bits = (static_cast<uint64_t>(lanes[pair]) << 32) | lanes[pair + 1];
  const uint64_t range = static_cast<uint64_t>(b - a);
  return a + static_cast<double>(bits % range);
}

// Philox blocks a draw of `count` elements uses.
inline uint64_t draw_blocks(int kind, int64_t count) {
  return kind == 2 ? (static_cast<uint64_t>(count) + 1) / 2 : (static_cast<uint64_t>(count) + 3) / 4;
}

}  // namespace keel
