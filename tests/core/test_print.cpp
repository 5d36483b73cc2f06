// Tensor printing against PyTorch: every expected string below is what Debian's PyTorch printed
// for the torch expression in the comment above it (repr(expr) with the default print options).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <keel/keel.h>

using namespace keel;

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

struct PrintCase {
  std::string expected;
  Tensor tensor;
};
}  // namespace

TEST_CASE("printing matches torch.Tensor.__repr__", "[print]") {
  const std::vector<PrintCase> cases = {
  // torch.tensor([1, 2, 3])
  {R"(tensor([1, 2, 3]))",
   tensor({1, 2, 3})},
  // torch.tensor([[1, -100], [1000, 5]])
  {R"(tensor([[   1, -100],
        [1000,    5]]))",
   tensor({{1, -100}, {1000, 5}})},
  // torch.tensor([1., 2., 3.])
  {R"(tensor([1., 2., 3.]))",
   tensor({1., 2., 3.})},
  // torch.tensor([-0.0, 1.5, -2.25])
  {R"(tensor([-0.0000,  1.5000, -2.2500]))",
   tensor({-0.0, 1.5, -2.25})},
  // torch.tensor([1.5, -2.25, 3.0, 100.125])
  {R"(tensor([  1.5000,  -2.2500,   3.0000, 100.1250]))",
   tensor({1.5, -2.25, 3.0, 100.125})},
  // torch.tensor([1e-5, 1.0])
  {R"(tensor([1.0000e-05, 1.0000e+00]))",
   tensor({1e-5, 1.0})},
  // torch.tensor([-1.5e-7, 2.0e3, 0.0])
  {R"(tensor([-1.5000e-07,  2.0000e+03,  0.0000e+00]))",
   tensor({-1.5e-7, 2.0e3, 0.0})},
  // torch.tensor([1e9, 1.0])
  {R"(tensor([1.0000e+09, 1.0000e+00]))",
   tensor({1e9, 1.0})},
  // torch.tensor([2000., 1.])
  {R"(tensor([2.0000e+03, 1.0000e+00]))",
   tensor({2000., 1.})},
  // torch.tensor([123456.789, 0.5])
  {R"(tensor([1.2346e+05, 5.0000e-01]))",
   tensor({123456.789, 0.5})},
  // torch.tensor([nan, inf, -inf, 1.5])
  {R"(tensor([   nan,    inf,   -inf, 1.5000]))",
   tensor({kNaN, kInf, -kInf, 1.5})},
  // torch.tensor([nan, 2., -inf])
  {R"(tensor([nan, 2., -inf]))",
   tensor({kNaN, 2., -kInf})},
  // torch.tensor([nan, inf])
  {R"(tensor([nan, inf]))",
   tensor({kNaN, kInf})},
  // torch.zeros(2, 2)
  {R"(tensor([[0., 0.],
        [0., 0.]]))",
   zeros({2, 2})},
  // torch.tensor([True, False, True])
  {R"(tensor([ True, False,  True]))",
   tensor({true, false, true})},
  // torch.tensor([[True], [False]])
  {R"(tensor([[ True],
        [False]]))",
   tensor({{true}, {false}})},
  // torch.tensor([1.5, 2.5, -65504.], dtype=torch.float16)
  {R"(tensor([ 1.5000e+00,  2.5000e+00, -6.5504e+04], dtype=torch.float16))",
   tensor({1.5, 2.5, -65504.}, f16)},
  // torch.tensor([0.1, 3.0], dtype=torch.bfloat16)
  {R"(tensor([0.1001, 3.0000], dtype=torch.bfloat16))",
   tensor({0.1, 3.0}, bf16)},
  // torch.tensor([0.1, 0.2], dtype=torch.float64)
  {R"(tensor([0.1000, 0.2000], dtype=torch.float64))",
   tensor({0.1, 0.2}, f64)},
  // torch.tensor([1, -2], dtype=torch.int32)
  {R"(tensor([ 1, -2], dtype=torch.int32))",
   tensor({1, -2}, i32)},
  // torch.tensor([-128, 127], dtype=torch.int8)
  {R"(tensor([-128,  127], dtype=torch.int8))",
   tensor({-128, 127}, i8)},
  // torch.tensor([255, 0], dtype=torch.uint8)
  {R"(tensor([255,   0], dtype=torch.uint8))",
   tensor({255, 0}, u8)},
  // torch.tensor(1.5)
  {R"(tensor(1.5000))",
   tensor(1.5)},
  // torch.tensor(7)
  {R"(tensor(7))",
   tensor(7)},
  // torch.tensor(-2.0, dtype=torch.float16)
  {R"(tensor(-2., dtype=torch.float16))",
   tensor(-2.0, f16)},
  // torch.tensor(1e-9, dtype=torch.float64)
  {R"(tensor(1.0000e-09, dtype=torch.float64))",
   tensor(1e-9, f64)},
  // torch.tensor(True)
  {R"(tensor(True))",
   tensor(true)},
  // torch.zeros(0)
  {R"(tensor([]))",
   zeros({0})},
  // torch.zeros(0, 3)
  {R"(tensor([], size=(0, 3)))",
   zeros({0, 3})},
  // torch.zeros(0, dtype=torch.int64)
  {R"(tensor([], dtype=torch.int64))",
   zeros({0}, {.dtype = i64})},
  // torch.zeros(2, 0, 4, dtype=torch.float16)
  {R"(tensor([], size=(2, 0, 4), dtype=torch.float16))",
   zeros({2, 0, 4}, {.dtype = f16})},
  // torch.arange(2000)
  {R"(tensor([   0,    1,    2,  ..., 1997, 1998, 1999]))",
   arange(2000)},
  // torch.arange(1001, dtype=torch.float32) * 0.125
  {R"(tensor([  0.0000,   0.1250,   0.2500,  ..., 124.7500, 124.8750, 125.0000]))",
   arange(0, 1001, 1, {.dtype = f32}) * 0.125},
  // torch.tensor([[1.5, 2.], [3., -4.]])
  {R"(tensor([[ 1.5000,  2.0000],
        [ 3.0000, -4.0000]]))",
   tensor({{1.5, 2.}, {3., -4.}})},
  // torch.eye(3)
  {R"(tensor([[1., 0., 0.],
        [0., 1., 0.],
        [0., 0., 1.]]))",
   eye(3)},
  // torch.arange(24).reshape(2, 3, 4)
  {R"(tensor([[[ 0,  1,  2,  3],
         [ 4,  5,  6,  7],
         [ 8,  9, 10, 11]],

        [[12, 13, 14, 15],
         [16, 17, 18, 19],
         [20, 21, 22, 23]]]))",
   arange(24).reshape({2, 3, 4})},
  // torch.arange(12).reshape(3, 4).t()
  {R"(tensor([[ 0,  4,  8],
        [ 1,  5,  9],
        [ 2,  6, 10],
        [ 3,  7, 11]]))",
   arange(12).reshape({3, 4}).t()},
  // torch.arange(1600).reshape(40, 40)
  {R"(tensor([[   0,    1,    2,  ...,   37,   38,   39],
        [  40,   41,   42,  ...,   77,   78,   79],
        [  80,   81,   82,  ...,  117,  118,  119],
        ...,
        [1480, 1481, 1482,  ..., 1517, 1518, 1519],
        [1520, 1521, 1522,  ..., 1557, 1558, 1559],
        [1560, 1561, 1562,  ..., 1597, 1598, 1599]]))",
   arange(1600).reshape({40, 40})},
  // (torch.arange(2000, dtype=torch.float64) * 0.25).reshape(2, 10, 100)
  {R"(tensor([[[0.0000e+00, 2.5000e-01, 5.0000e-01,  ..., 2.4250e+01,
          2.4500e+01, 2.4750e+01],
         [2.5000e+01, 2.5250e+01, 2.5500e+01,  ..., 4.9250e+01,
          4.9500e+01, 4.9750e+01],
         [5.0000e+01, 5.0250e+01, 5.0500e+01,  ..., 7.4250e+01,
          7.4500e+01, 7.4750e+01],
         ...,
         [1.7500e+02, 1.7525e+02, 1.7550e+02,  ..., 1.9925e+02,
          1.9950e+02, 1.9975e+02],
         [2.0000e+02, 2.0025e+02, 2.0050e+02,  ..., 2.2425e+02,
          2.2450e+02, 2.2475e+02],
         [2.2500e+02, 2.2525e+02, 2.2550e+02,  ..., 2.4925e+02,
          2.4950e+02, 2.4975e+02]],

        [[2.5000e+02, 2.5025e+02, 2.5050e+02,  ..., 2.7425e+02,
          2.7450e+02, 2.7475e+02],
         [2.7500e+02, 2.7525e+02, 2.7550e+02,  ..., 2.9925e+02,
          2.9950e+02, 2.9975e+02],
         [3.0000e+02, 3.0025e+02, 3.0050e+02,  ..., 3.2425e+02,
          3.2450e+02, 3.2475e+02],
         ...,
         [4.2500e+02, 4.2525e+02, 4.2550e+02,  ..., 4.4925e+02,
          4.4950e+02, 4.4975e+02],
         [4.5000e+02, 4.5025e+02, 4.5050e+02,  ..., 4.7425e+02,
          4.7450e+02, 4.7475e+02],
         [4.7500e+02, 4.7525e+02, 4.7550e+02,  ..., 4.9925e+02,
          4.9950e+02, 4.9975e+02]]], dtype=torch.float64))",
   (arange(0, 2000, 1, {.dtype = f64}) * 0.25).reshape({2, 10, 100})},
  // torch.arange(30, dtype=torch.float64) * 1.5
  {R"(tensor([ 0.0000,  1.5000,  3.0000,  4.5000,  6.0000,  7.5000,  9.0000, 10.5000,
        12.0000, 13.5000, 15.0000, 16.5000, 18.0000, 19.5000, 21.0000, 22.5000,
        24.0000, 25.5000, 27.0000, 28.5000, 30.0000, 31.5000, 33.0000, 34.5000,
        36.0000, 37.5000, 39.0000, 40.5000, 42.0000, 43.5000],
       dtype=torch.float64))",
   arange(0, 30, 1, {.dtype = f64}) * 1.5},
  // torch.arange(25, dtype=torch.float32) * 0.0625
  {R"(tensor([0.0000, 0.0625, 0.1250, 0.1875, 0.2500, 0.3125, 0.3750, 0.4375, 0.5000,
        0.5625, 0.6250, 0.6875, 0.7500, 0.8125, 0.8750, 0.9375, 1.0000, 1.0625,
        1.1250, 1.1875, 1.2500, 1.3125, 1.3750, 1.4375, 1.5000]))",
   arange(0, 25, 1, {.dtype = f32}) * 0.0625},
  // torch.arange(10, dtype=torch.int32) * 100000
  {R"(tensor([     0, 100000, 200000, 300000, 400000, 500000, 600000, 700000, 800000,
        900000], dtype=torch.int32))",
   arange(0, 10, 1, {.dtype = i32}) * 100000},
  // torch.arange(13, dtype=torch.float16) * 1.25
  {R"(tensor([ 0.0000,  1.2500,  2.5000,  3.7500,  5.0000,  6.2500,  7.5000,  8.7500,
        10.0000, 11.2500, 12.5000, 13.7500, 15.0000], dtype=torch.float16))",
   arange(0, 13, 1, {.dtype = f16}) * 1.25},
  // torch.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
  {R"(tensor([[[[ 0,  1],
          [ 2,  3]],

         [[ 4,  5],
          [ 6,  7]],

         [[ 8,  9],
          [10, 11]]],


        [[[12, 13],
          [14, 15]],

         [[16, 17],
          [18, 19]],

         [[20, 21],
          [22, 23]]]]))",
   arange(2 * 3 * 2 * 2).reshape({2, 3, 2, 2})},
  // torch.arange(10000, dtype=torch.float32).reshape(10, 10, 100) * 0.5
  {R"(tensor([[[0.0000e+00, 5.0000e-01, 1.0000e+00,  ..., 4.8500e+01,
          4.9000e+01, 4.9500e+01],
         [5.0000e+01, 5.0500e+01, 5.1000e+01,  ..., 9.8500e+01,
          9.9000e+01, 9.9500e+01],
         [1.0000e+02, 1.0050e+02, 1.0100e+02,  ..., 1.4850e+02,
          1.4900e+02, 1.4950e+02],
         ...,
         [3.5000e+02, 3.5050e+02, 3.5100e+02,  ..., 3.9850e+02,
          3.9900e+02, 3.9950e+02],
         [4.0000e+02, 4.0050e+02, 4.0100e+02,  ..., 4.4850e+02,
          4.4900e+02, 4.4950e+02],
         [4.5000e+02, 4.5050e+02, 4.5100e+02,  ..., 4.9850e+02,
          4.9900e+02, 4.9950e+02]],

        [[5.0000e+02, 5.0050e+02, 5.0100e+02,  ..., 5.4850e+02,
          5.4900e+02, 5.4950e+02],
         [5.5000e+02, 5.5050e+02, 5.5100e+02,  ..., 5.9850e+02,
          5.9900e+02, 5.9950e+02],
         [6.0000e+02, 6.0050e+02, 6.0100e+02,  ..., 6.4850e+02,
          6.4900e+02, 6.4950e+02],
         ...,
         [8.5000e+02, 8.5050e+02, 8.5100e+02,  ..., 8.9850e+02,
          8.9900e+02, 8.9950e+02],
         [9.0000e+02, 9.0050e+02, 9.0100e+02,  ..., 9.4850e+02,
          9.4900e+02, 9.4950e+02],
         [9.5000e+02, 9.5050e+02, 9.5100e+02,  ..., 9.9850e+02,
          9.9900e+02, 9.9950e+02]],

        [[1.0000e+03, 1.0005e+03, 1.0010e+03,  ..., 1.0485e+03,
          1.0490e+03, 1.0495e+03],
         [1.0500e+03, 1.0505e+03, 1.0510e+03,  ..., 1.0985e+03,
          1.0990e+03, 1.0995e+03],
         [1.1000e+03, 1.1005e+03, 1.1010e+03,  ..., 1.1485e+03,
          1.1490e+03, 1.1495e+03],
         ...,
         [1.3500e+03, 1.3505e+03, 1.3510e+03,  ..., 1.3985e+03,
          1.3990e+03, 1.3995e+03],
         [1.4000e+03, 1.4005e+03, 1.4010e+03,  ..., 1.4485e+03,
          1.4490e+03, 1.4495e+03],
         [1.4500e+03, 1.4505e+03, 1.4510e+03,  ..., 1.4985e+03,
          1.4990e+03, 1.4995e+03]],

        ...,

        [[3.5000e+03, 3.5005e+03, 3.5010e+03,  ..., 3.5485e+03,
          3.5490e+03, 3.5495e+03],
         [3.5500e+03, 3.5505e+03, 3.5510e+03,  ..., 3.5985e+03,
          3.5990e+03, 3.5995e+03],
         [3.6000e+03, 3.6005e+03, 3.6010e+03,  ..., 3.6485e+03,
          3.6490e+03, 3.6495e+03],
         ...,
         [3.8500e+03, 3.8505e+03, 3.8510e+03,  ..., 3.8985e+03,
          3.8990e+03, 3.8995e+03],
         [3.9000e+03, 3.9005e+03, 3.9010e+03,  ..., 3.9485e+03,
          3.9490e+03, 3.9495e+03],
         [3.9500e+03, 3.9505e+03, 3.9510e+03,  ..., 3.9985e+03,
          3.9990e+03, 3.9995e+03]],

        [[4.0000e+03, 4.0005e+03, 4.0010e+03,  ..., 4.0485e+03,
          4.0490e+03, 4.0495e+03],
         [4.0500e+03, 4.0505e+03, 4.0510e+03,  ..., 4.0985e+03,
          4.0990e+03, 4.0995e+03],
         [4.1000e+03, 4.1005e+03, 4.1010e+03,  ..., 4.1485e+03,
          4.1490e+03, 4.1495e+03],
         ...,
         [4.3500e+03, 4.3505e+03, 4.3510e+03,  ..., 4.3985e+03,
          4.3990e+03, 4.3995e+03],
         [4.4000e+03, 4.4005e+03, 4.4010e+03,  ..., 4.4485e+03,
          4.4490e+03, 4.4495e+03],
         [4.4500e+03, 4.4505e+03, 4.4510e+03,  ..., 4.4985e+03,
          4.4990e+03, 4.4995e+03]],

        [[4.5000e+03, 4.5005e+03, 4.5010e+03,  ..., 4.5485e+03,
          4.5490e+03, 4.5495e+03],
         [4.5500e+03, 4.5505e+03, 4.5510e+03,  ..., 4.5985e+03,
          4.5990e+03, 4.5995e+03],
         [4.6000e+03, 4.6005e+03, 4.6010e+03,  ..., 4.6485e+03,
          4.6490e+03, 4.6495e+03],
         ...,
         [4.8500e+03, 4.8505e+03, 4.8510e+03,  ..., 4.8985e+03,
          4.8990e+03, 4.8995e+03],
         [4.9000e+03, 4.9005e+03, 4.9010e+03,  ..., 4.9485e+03,
          4.9490e+03, 4.9495e+03],
         [4.9500e+03, 4.9505e+03, 4.9510e+03,  ..., 4.9985e+03,
          4.9990e+03, 4.9995e+03]]]))",
   arange(0, 10000, 1, {.dtype = f32}).reshape({10, 10, 100}) * 0.5},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i << "\nexpected:\n" << cases[i].expected << "\ngot:\n" << cases[i].tensor.str());
    CHECK(cases[i].tensor.str() == cases[i].expected);
  }
}

TEST_CASE("printing summarizes above 1000 elements only", "[print]") {
  // torch.arange(1000) lists all 1000 numbers; torch.arange(1001) prints
  // tensor([   0,    1,    2,  ...,  998,  999, 1000])
  const std::string full = arange(1000).str();
  CHECK(full.find("...") == std::string::npos);
  CHECK(full.find(" 999])") != std::string::npos);
  CHECK(arange(1001).str() == "tensor([   0,    1,    2,  ...,  998,  999, 1000])");
}

TEST_CASE("printing reads strided views and non-default dtypes", "[print]") {
  // torch.arange(10, dtype=torch.float64)[1::3] * 0.5
  CHECK((arange(0, 10, 1, {.dtype = f64}).slice(0, 1, 10, 3) * 0.5).str() ==
        "tensor([0.5000, 2.0000, 3.5000], dtype=torch.float64)");
  // torch.tensor([[1, 2], [3, 4]], dtype=torch.int8).t()
  CHECK(tensor({{1, 2}, {3, 4}}, i8).t().str() == "tensor([[1, 3],\n        [2, 4]], dtype=torch.int8)");
  // torch.tensor(5.).expand(2, 3)
  CHECK(tensor(5.).expand({2, 3}).str() == "tensor([[5., 5., 5.],\n        [5., 5., 5.]])");
}

TEST_CASE("operator<< writes str()", "[print]") {
  std::ostringstream stream;
  stream << tensor({1.5, 2.0});
  // torch.tensor([1.5, 2.0])
  CHECK(stream.str() == "tensor([1.5000, 2.0000])");
}

TEST_CASE("printing a CUDA tensor names the device", "[print][cuda]") {
  if (!cuda::is_available()) {
    WARN("skipped: no CUDA device");
    return;
  }
  // torch.tensor([1., 2.], device='cuda')
  CHECK(tensor({1., 2.}, std::nullopt, Device::cuda(0)).str() == "tensor([1., 2.], device='cuda:0')");
  // torch.tensor([1., 2.], device='cuda', dtype=torch.float16)
  CHECK(tensor({1., 2.}, f16, Device::cuda(0)).str() ==
        "tensor([1., 2.], device='cuda:0', dtype=torch.float16)");
}
