#pragma once
// Small random helpers for io/: a 64-bit mixer (splitmix64's finaliser, Steele et al. 2014)
// to derive keys from (seed, epoch, index), and draws from a keel::Generator without building
// a tensor. Internal to io/.
#include <cstdint>

#include "keel/core/rng.h"

namespace keel::data::detail {

inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// 64 random bits: one Philox block from the generator.
inline uint64_t next_u64(Generator& generator) {
  const PhiloxState state = generator.reserve(1);
  uint32_t out[4];
  philox4x32_10(state.seed, state.offset, out);
  return (uint64_t{out[0]} << 32) | out[1];
}

// Uniform in [0, 1) with 53 random bits.
inline double next_double(Generator& generator) {
  return static_cast<double>(next_u64(generator) >> 11) * 0x1.0p-53;
}

// Uniform integer in [0, bound) without bias (Lemire's multiply and reject), bound > 0.
inline uint64_t next_below(uint64_t bound, uint64_t (*draw)(void*), void* state) {
  uint64_t x = draw(state);
  __uint128_t m = static_cast<__uint128_t>(x) * bound;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < bound) {
    const uint64_t threshold = -bound % bound;
    while (low < threshold) {
      x = draw(state);
      m = static_cast<__uint128_t>(x) * bound;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

}  // namespace keel::data::detail
