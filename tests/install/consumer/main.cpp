#include <keel/keel.h>

#include <iostream>

int main() {
  keel::Tensor x = keel::ones({2, 3}) * 2.0;
  const double total = keel::sum(x).item<double>();
  std::cout << "sum = " << total << "\n";
  return total == 12.0 ? 0 : 1;
}
