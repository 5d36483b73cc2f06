#pragma once
// Where a tensor's memory lives: the host (cpu) or one CUDA device (cuda:N).
#include <cstdint>
#include <string>

namespace keel {

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static constexpr Device cpu() { return {DeviceType::cpu, 0}; }
  static constexpr Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  bool operator==(const Device&) const = default;
  std::string str() const;  // "cpu", "cuda:0"
};

// Parses "cpu", "cuda", "cuda:1".
Device parse_device(const std::string& text);

namespace cuda {
bool is_available();  // false in a build without CUDA or on a machine without a device
int device_count();
void synchronize(int device = -1);
}  // namespace cuda

}  // namespace keel
