// CPU Philox draws (the element formulas are in kernels/random_draw.h, shared with CUDA), compiled
// once per instruction set (the numbers are the same on every path).
//
// Philox blocks are computed 16 at a time (philox_16_blocks): with AVX-512 as 16 lanes of one
// vector per Philox word (the 32x32 -> 64-bit products by vpmuludq on the even and odd lanes),
// elsewhere as 16 independent scalar chains, which at least overlap their multiply latencies. Each
// kind's element formula is instantiated on its own (fill_blocks<kind>), so the per-element branch
// on the kind folds away. 3.2M f32 uniforms (rand, 1 / 2 threads): 36 / ~20 ms with one Philox
// block computed per element, 6.6 / 3.4 ms now; dropout of the same size 40 / 24 -> 12 / 6 ms.
// The numbers are those of philox4x32_10 block by block (and so CUDA's one-thread-per-element
// draws) on every path; tests/core/test_random.cpp compares them element by element.
#include <immintrin.h>

#include <algorithm>

#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/cpu/strided_loop.h"
#include "keel/kernels/dispatch.h"
#include "keel/kernels/random_draw.h"

// GCC 12's AVX-512 intrinsics start from a self-initialized "undefined" register that
// -W(maybe-)uninitialized reports once they are inlined; the values are never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace keel::cpu::KEEL_CPU_ISA {

namespace {

constexpr int kBatchBlocks = 16;

constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;

#if defined(__AVX512F__)
// hi and lo 32 bits of the 32x32 -> 64-bit products c[j] * multiplier, j < 16: vpmuludq takes the
// even lanes; the odd ones are shifted down first.
inline void multiply_wide(__m512i c, __m512i multiplier, __m512i& hi, __m512i& lo) {
  const __m512i even = _mm512_mul_epu32(c, multiplier);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(c, 32), multiplier);
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}
#endif

// lanes[l][j] = lane l of philox4x32_10(seed, counter + j), j < 16.
void philox_16_blocks(uint64_t seed, uint64_t counter, uint32_t lanes[4][kBatchBlocks]) {
#if defined(__AVX512F__)
  // counter + j as 64 bits: low words, and high words with the carry of the low add.
  const __m512i low_start = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(counter)));
  const __m512i steps = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  __m512i c0 = _mm512_add_epi32(low_start, steps);
  const __mmask16 carry = _mm512_cmplt_epu32_mask(c0, low_start);
  __m512i c1 = _mm512_mask_add_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(counter >> 32))), carry,
                                     _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(counter >> 32))),
                                     _mm512_set1_epi32(1));
  __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
  const __m512i mul0 = _mm512_set1_epi32(static_cast<int>(kMul0)), mul1 = _mm512_set1_epi32(static_cast<int>(kMul1));
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    __m512i hi0, lo0, hi1, lo1;
    multiply_wide(c0, mul0, hi0, lo0);
    multiply_wide(c2, mul1, hi1, lo1);
    // 0x96: a ^ b ^ c
    c0 = _mm512_ternarylogic_epi32(hi1, c1, _mm512_set1_epi32(static_cast<int>(k0)), 0x96);
    c2 = _mm512_ternarylogic_epi32(hi0, c3, _mm512_set1_epi32(static_cast<int>(k1)), 0x96);
    c1 = lo1;
    c3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  _mm512_storeu_si512(lanes[0], c0);
  _mm512_storeu_si512(lanes[1], c1);
  _mm512_storeu_si512(lanes[2], c2);
  _mm512_storeu_si512(lanes[3], c3);
#else
  uint32_t c0[kBatchBlocks], c1[kBatchBlocks], c2[kBatchBlocks], c3[kBatchBlocks];
  for (int j = 0; j < kBatchBlocks; ++j) {
    const uint64_t count = counter + static_cast<uint64_t>(j);
    c0[j] = static_cast<uint32_t>(count);
    c1[j] = static_cast<uint32_t>(count >> 32);
    c2[j] = 0;
    c3[j] = 0;
  }
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    for (int j = 0; j < kBatchBlocks; ++j) {
      const uint64_t product0 = static_cast<uint64_t>(kMul0) * c0[j];
      const uint64_t product1 = static_cast<uint64_t>(kMul1) * c2[j];
      const uint32_t next0 = static_cast<uint32_t>(product1 >> 32) ^ c1[j] ^ k0;
      const uint32_t next2 = static_cast<uint32_t>(product0 >> 32) ^ c3[j] ^ k1;
      c1[j] = static_cast<uint32_t>(product1);
      c3[j] = static_cast<uint32_t>(product0);
      c0[j] = next0;
      c2[j] = next2;
    }
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  for (int j = 0; j < kBatchBlocks; ++j) {
    lanes[0][j] = c0[j];
    lanes[1][j] = c1[j];
    lanes[2][j] = c2[j];
    lanes[3][j] = c3[j];
  }
#endif
}

}  // namespace

// Elements [0, count) of the draw, batch by batch of 16 blocks.
template <int kind, typename T>
void fill_blocks(T* data, int64_t count, double a, double b, PhiloxState state) {
  constexpr int64_t per_block = kind == kRandomInteger || kind == kRandomUniform53 ? 2 : 4;
  const int64_t blocks = static_cast<int64_t>(draw_blocks(kind, count));
  const int64_t batches = (blocks + kBatchBlocks - 1) / kBatchBlocks;
  const int threads = threads_for(count, 4096);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t batch = 0; batch < batches; ++batch) {
    uint32_t lanes[4][kBatchBlocks];
    const int64_t first_block = batch * kBatchBlocks;
    philox_16_blocks(state.seed, state.offset + static_cast<uint64_t>(first_block), lanes);
    const int64_t first = first_block * per_block;
    if (first + kBatchBlocks * per_block <= count) {  // a whole batch: fixed trip counts
      for (int j = 0; j < kBatchBlocks; ++j) {
        const uint32_t block_lanes[4] = {lanes[0][j], lanes[1][j], lanes[2][j], lanes[3][j]};
        for (int k = 0; k < per_block; ++k) {
          const int64_t i = first + j * per_block + k;
          data[i] = convert<T, double>(element_from_lanes(kind, a, b, block_lanes, i));
        }
      }
      continue;
    }
    for (int64_t i = first; i < count; ++i) {
      const int j = static_cast<int>((i - first) / per_block);
      const uint32_t block_lanes[4] = {lanes[0][j], lanes[1][j], lanes[2][j], lanes[3][j]};
      data[i] = convert<T, double>(element_from_lanes(kind, a, b, block_lanes, i));
    }
  }
}

void random_fill(const Tensor& out, int kind, double a, double b, PhiloxState state) {
  KEEL_ASSERT(out.is_contiguous());
  const int64_t count = out.numel();
  dispatch_all(out.dtype(), "random", [&]<typename T>() {
    T* data = static_cast<T*>(out.raw_data());
    switch (kind) {
      case kRandomUniform24: return fill_blocks<kRandomUniform24>(data, count, a, b, state);
      case kRandomNormal: return fill_blocks<kRandomNormal>(data, count, a, b, state);
      case kRandomInteger: return fill_blocks<kRandomInteger>(data, count, a, b, state);
      case kRandomUniform53: return fill_blocks<kRandomUniform53>(data, count, a, b, state);
      case kRandomUniform11: return fill_blocks<kRandomUniform11>(data, count, a, b, state);
      case kRandomUniform8: return fill_blocks<kRandomUniform8>(data, count, a, b, state);
      default: KEEL_ASSERT(false);
    }
  });
}

}  // namespace keel::cpu::KEEL_CPU_ISA
