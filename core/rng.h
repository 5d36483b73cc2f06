#pragma once
// Counter-based random numbers: Philox-4x32-10 (Salmon et al., "Parallel random numbers: as
// easy as 1, 2, 3", SC'11). A draw is a pure function of (seed, counter), so CPU and CUDA
// kernels produce the same numbers for the same seed and offset, in any thread order.
//
//   element i of a draw that starts at `offset` uses block (offset + i / 4) and lane i % 4
//   uniform  u = (bits >> 8) * 2^-24                       in [0, 1)
//   normal   Box-Muller on lanes (2j, 2j+1) of block offset + i / 2: cos for even i, sin for odd
#include <cstdint>
#include <mutex>

#include "keel/core/macros.h"

namespace keel {

struct PhiloxState {
  uint64_t seed = 0;
  uint64_t offset = 0;  // in 128-bit blocks
};

KEEL_HOST_DEVICE inline void philox4x32_10(uint64_t seed, uint64_t counter, uint32_t out[4]) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t product0 = static_cast<uint64_t>(kMul0) * c0;
    const uint64_t product1 = static_cast<uint64_t>(kMul1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(product0 >> 32), lo0 = static_cast<uint32_t>(product0);
    const uint32_t hi1 = static_cast<uint32_t>(product1 >> 32), lo1 = static_cast<uint32_t>(product1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

KEEL_HOST_DEVICE inline float uniform_from_bits(uint32_t bits) {
  return static_cast<float>(bits >> 8) * 5.9604644775390625e-08f;  // 2^-24
}

// A generator hands out disjoint counter ranges; it is safe to share between threads.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0x853c49e6748fea9bull) : state_{seed, 0} {}
  void manual_seed(uint64_t seed);
  uint64_t seed() const;
  PhiloxState state() const;
  void set_state(PhiloxState state);
  // Reserves `blocks` Philox blocks and returns the state to draw them from.
  PhiloxState reserve(uint64_t blocks);

 private:
  mutable std::mutex mutex_;
  PhiloxState state_;
};

Generator& default_generator();
void manual_seed(uint64_t seed);  // seeds the default generator

}  // namespace keel
