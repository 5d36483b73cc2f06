#include "keel/core/device.h"

#include <string>

#include "keel/core/error.h"

namespace keel {

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

Device parse_device(const std::string& text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string digits = text.substr(5);
    KEEL_CHECK(!digits.empty() && digits.size() < 4 &&
                   digits.find_first_not_of("0123456789") == std::string::npos,
               "[device] cannot parse device '", text, "': expected cpu, cuda or cuda:N");
    return Device::cuda(std::stoi(digits));
  }
  fail("[device] cannot parse device '", text, "': expected cpu, cuda or cuda:N");
}

}  // namespace keel
