// The AMX GEMM kernels of gemm_amx_kernels.inc on the tile emulator (amx_tiles.h): the same
// tiling, packing, edge handling and epilogues as the hardware instantiation in gemm_amx.cpp, each
// tile instruction computed in software. Runs on any x86-64 CPU; what the tests verify.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "keel/core/error.h"
#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/amx_tiles.h"
#include "keel/kernels/cpu/gemm_amx.h"
#include "keel/kernels/cpu/quantize.h"

#define KEEL_AMX_TARGET

namespace keel::cpu::amx_emulated {
using Tiles = amx::EmulatedTiles;
}  // namespace keel::cpu::amx_emulated

#define KEEL_AMX_NS amx_emulated
#include "keel/kernels/cpu/gemm_amx_kernels.inc"
#undef KEEL_AMX_NS
