// Random factories over the Philox generator: rand, randn, randint, bernoulli and *_like.
#include <cmath>
#include <cstdint>
#include <utility>

#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/cuda/cuda_kernels.h"
#include "keel/kernels/random_draw.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"

namespace keel {

namespace {
// [lowest, highest] of an integer dtype.
std::pair<int64_t, int64_t> dtype_integer_range(DType dtype) {
  switch (dtype) {
    case DType::i8: return {INT8_MIN, INT8_MAX};
    case DType::u8: return {0, UINT8_MAX};
    case DType::i32: return {INT32_MIN, INT32_MAX};
    default: return {INT64_MIN, INT64_MAX};
  }
}

Tensor draw(Shape shape, TensorOptions options, Generator* generator, int kind, double a, double b) {
  Tensor out = empty(std::move(shape), options);
  Generator& source = generator ? *generator : default_generator();
  const PhiloxState state = source.reserve(draw_blocks(kind, out.numel()));
  if (out.is_cuda()) cuda::random_fill(out, kind, a, b, state);
  else cpu::random_fill(out, kind, a, b, state);
  return out;
}
}  // namespace

Tensor rand(Shape shape, TensorOptions options, Generator* generator) {
  KEEL_CHECK(is_floating(options.dtype), "[rand] needs a floating dtype, got ", dtype_name(options.dtype));
  const int kind = options.dtype == DType::f64   ? kRandomUniform53
                   : options.dtype == DType::f16  ? kRandomUniform11
                   : options.dtype == DType::bf16 ? kRandomUniform8
                                                  : kRandomUniform24;
  return draw(std::move(shape), options, generator, kind, 0.0, 1.0);
}

Tensor randn(Shape shape, TensorOptions options, Generator* generator) {
  KEEL_CHECK(is_floating(options.dtype), "[randn] needs a floating dtype, got ", dtype_name(options.dtype));
  return draw(std::move(shape), options, generator, kRandomNormal, 0.0, 1.0);
}

Tensor randint(int64_t low, int64_t high, Shape shape, TensorOptions options, Generator* generator) {
  KEEL_CHECK(high > low, "[randint] expects low < high, got low ", low, " and high ", high);
  KEEL_CHECK(options.dtype != DType::bool_, "[randint] bool dtype is not supported");
  // The bounds travel to the kernels as doubles (kernels/random_draw.h): beyond 2^53 they would
  // round, and a range of 2^64 used to convert to a 0 modulus (SIGFPE). high - low cannot
  // overflow once both bounds are within 2^53.
  constexpr int64_t kExact = int64_t{1} << 53;
  KEEL_CHECK(low >= -kExact && high <= kExact && high - low <= kExact, "[randint] low ", low, " and high ", high,
             " must lie in [-2^53, 2^53] with high - low <= 2^53");
  if (is_integral(options.dtype)) {
    const auto [lowest, highest] = dtype_integer_range(options.dtype);
    KEEL_CHECK(low >= lowest && high - 1 <= highest, "[randint] range [", low, ", ", high,
               ") does not fit dtype ", dtype_name(options.dtype), " ([", lowest, ", ", highest, "])");
  }
  return draw(std::move(shape), options, generator, kRandomInteger, static_cast<double>(low),
              static_cast<double>(high));
}

Tensor bernoulli(const Tensor& probabilities, Generator* generator) {
  KEEL_CHECK(is_floating(probabilities.dtype()), "[bernoulli] probabilities must be floating, got ",
             dtype_name(probabilities.dtype()));
  const Tensor u = rand(probabilities.shape(), {DType::f32, probabilities.device()}, generator);
  return lt(u, probabilities).to(probabilities.dtype());
}

Tensor bernoulli(Shape shape, double p, TensorOptions options, Generator* generator) {
  KEEL_CHECK(p >= 0.0 && p <= 1.0, "[bernoulli] p must be in [0, 1], got ", p);
  const Tensor u = rand(std::move(shape), {DType::f32, options.device}, generator);
  return lt(u, p).to(options.dtype);
}

Tensor rand_like(const Tensor& x, Generator* generator) { return rand(x.shape(), x.options(), generator); }
Tensor randn_like(const Tensor& x, Generator* generator) { return randn(x.shape(), x.options(), generator); }

}  // namespace keel
