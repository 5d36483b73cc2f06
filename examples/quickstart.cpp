// A first tour of Keel's tensor core: factories, views, broadcasting, reductions, printing.
#include <iostream>

#include <keel/keel.h>

using namespace keel;

int main() {
  manual_seed(0);
  Tensor x = arange(12).reshape({3, 4}).to(DType::f32);
  std::cout << "x =\n" << x << "\n\n";
  std::cout << "x.t() (a view, no copy) =\n" << x.t() << "\n\n";
  Tensor row = tensor({1.0, 10.0, 100.0, 1000.0});
  std::cout << "x * row (broadcast [3, 4] with [4]) =\n" << x * row << "\n\n";
  std::cout << "sum over dim 1: " << sum(x, {1}) << "\n";
  std::cout << "mean of all: " << mean(x) << "\n";
  auto [values, indices] = max(x, 1);
  std::cout << "max over dim 1: " << values << " at " << indices << "\n\n";
  Tensor noise = randn({2, 3});
  std::cout << "randn (seed 0) =\n" << noise << "\n";
  std::cout << "gelu(noise) in bf16 =\n" << gelu(noise.to(DType::bf16)) << "\n\n";
  std::cout << "sigmoid(x - 5) > 0.5 =\n" << (sigmoid(x - 5) > 0.5) << "\n";
  try {
    add(x, ones({2, 3}));
  } catch (const Error& error) {
    std::cout << "\nbad input gives a clear error: " << error.what() << "\n";
  }
  std::cout << "\nCUDA available: " << (cuda::is_available() ? "yes" : "no") << "\n";
  return 0;
}
