// The CPU feature caps: KEEL_CPU_ISA / KEEL_CPU_DISABLE and their API forms narrow what the
// kernels may use, never widen it, and bad names are refused.
#include <cstdlib>
#include <string>

#include "test_util.h"

#include "keel/core/error.h"
#include "keel/kernels/cpu/cpu_features.h"

using namespace keel;

namespace {
// Restores the uncapped state after a test changes it.
struct ResetCaps {
  ~ResetCaps() {
    cpu::set_cpu_isa("amx");
    cpu::set_cpu_disabled("");
  }
};
}  // namespace

TEST_CASE("cpu features: levels cap what kernels may use", "[cpu]") {
  ResetCaps reset;
  cpu::set_cpu_isa("amx");
  cpu::set_cpu_disabled("");
  const cpu::CpuFeatures have = cpu::detected_cpu_features();
  INFO(cpu::describe_cpu_features());
  const cpu::CpuFeatures now = cpu::cpu_features();
  CHECK(now.avx2 == have.avx2);
  CHECK(now.avx512 == have.avx512);
  CHECK(now.avx512_bf16 == have.avx512_bf16);
  CHECK(now.amx_bf16 == have.amx_bf16);
  CHECK(cpu::active_isa() == (have.amx_bf16 || have.amx_int8 ? "amx" : have.avx512 ? "avx512" : have.avx2 ? "avx2" : "baseline"));

  cpu::set_cpu_isa("avx512");
  CHECK_FALSE(cpu::cpu_features().amx_bf16);
  CHECK_FALSE(cpu::cpu_features().amx_int8);
  CHECK(cpu::cpu_features().avx512_vnni == have.avx512_vnni);

  cpu::set_cpu_isa("avx2");
  CHECK_FALSE(cpu::cpu_features().avx512);
  CHECK_FALSE(cpu::cpu_features().avx512_bf16);
  CHECK(cpu::cpu_features().avx2 == have.avx2);
  CHECK(cpu::active_isa() == (have.avx2 ? "avx2" : "baseline"));

  cpu::set_cpu_isa("baseline");
  CHECK_FALSE(cpu::cpu_features().avx2);
  CHECK(cpu::active_isa() == "baseline");
}

TEST_CASE("cpu features: single features turn off by name", "[cpu]") {
  ResetCaps reset;
  cpu::set_cpu_isa("amx");
  const cpu::CpuFeatures have = cpu::detected_cpu_features();
  cpu::set_cpu_disabled("avx512_bf16,amx");
  CHECK_FALSE(cpu::cpu_features().avx512_bf16);
  CHECK_FALSE(cpu::cpu_features().amx_bf16);
  CHECK_FALSE(cpu::cpu_features().amx_int8);
  CHECK(cpu::cpu_features().avx512_vnni == have.avx512_vnni);
  CHECK(cpu::cpu_features().avx512 == have.avx512);
  cpu::set_cpu_disabled("");
  CHECK(cpu::cpu_features().avx512_bf16 == have.avx512_bf16);
}

TEST_CASE("cpu features: unknown names are refused and change nothing", "[cpu]") {
  ResetCaps reset;
  cpu::set_cpu_isa("avx2");
  CHECK_THROWS_AS(cpu::set_cpu_isa("sse9"), Error);
  CHECK_THROWS_AS(cpu::set_cpu_disabled("avx512_bf16,warp_drive"), Error);
  CHECK(cpu::active_isa() == (cpu::detected_cpu_features().avx2 ? "avx2" : "baseline"));
  if (cpu::detected_cpu_features().avx512_bf16) {
    cpu::set_cpu_isa("avx512");
    CHECK(cpu::cpu_features().avx512_bf16);  // the refused list disabled nothing
  }
}

// Run by the ctest entry kernels_cpu_features_empty_env, which starts the process with both
// variables set to the empty string (hidden from the default run: the caps are read once, at the
// first kernel call of a process, so this needs a process of its own).
TEST_CASE("cpu features: an empty KEEL_CPU_ISA or KEEL_CPU_DISABLE counts as unset", "[.env]") {
  const char* level = std::getenv("KEEL_CPU_ISA");
  const char* disabled = std::getenv("KEEL_CPU_DISABLE");
  REQUIRE(level != nullptr);
  REQUIRE(std::string(level).empty());
  REQUIRE(disabled != nullptr);
  REQUIRE(std::string(disabled).empty());
  const cpu::CpuFeatures have = cpu::detected_cpu_features();
  const cpu::CpuFeatures now = cpu::cpu_features();  // the first read of the caps: must not throw
  CHECK(now.avx2 == have.avx2);
  CHECK(now.avx512 == have.avx512);
  CHECK(now.avx512_vnni == have.avx512_vnni);
  CHECK(now.avx512_bf16 == have.avx512_bf16);
  CHECK(now.amx_int8 == have.amx_int8);
}
