// adamw_step_: the fused CPU step (every ISA variant) and its composite against the AdamW formula
// in float64, over several steps and parameters of odd sizes (one tensor spans many work chunks),
// with amsgrad, maximize and weight decay; bf16 parameters with f32 state; values of
// torch.optim.AdamW (torch 1.13, foreach=False) pasted below; version bumps; errors.
#include <cmath>
#include <string>
#include <vector>

#include "keel/kernels/cpu/cpu_features.h"
#include "test_util.h"

using namespace keel;
using namespace keel::test;

namespace {

// The AdamW formula (torch.optim.AdamW, single tensor) in double, on plain vectors.
struct Reference {
  std::vector<double> p, m, v, vmax;
  void step(const std::vector<double>& grad, int64_t t, const AdamWStepOptions& o, bool round_bf16 = false) {
    const double bc1 = 1.0 - std::pow(o.beta1, t), bc2_sqrt = std::sqrt(1.0 - std::pow(o.beta2, t));
    for (size_t i = 0; i < p.size(); ++i) {
      const double g = o.maximize ? -grad[i] : grad[i];
      p[i] *= 1.0 - o.lr * o.weight_decay;
      m[i] = o.beta1 * m[i] + (1.0 - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1.0 - o.beta2) * g * g;
      double second = v[i];
      if (o.amsgrad) second = vmax[i] = std::max(vmax[i], v[i]);
      p[i] -= o.lr / bc1 * m[i] / (std::sqrt(second) / bc2_sqrt + o.eps);
      if (round_bf16) p[i] = static_cast<float>(BFloat16(static_cast<float>(p[i])));
    }
  }
};

std::vector<double> values_of(const Tensor& t) {
  const Tensor flat = t.to(DType::f64).contiguous().reshape({-1});
  const double* data = flat.data_ptr<double>();
  return std::vector<double>(data, data + flat.numel());
}

void expect_near(const Tensor& actual, const std::vector<double>& expected, double atol, double rtol,
                 const std::string& what) {
  INFO(what);
  const std::vector<double> got = values_of(actual);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::fabs(got[i] - expected[i]) <= atol + rtol * std::fabs(expected[i]))) {
      FAIL_CHECK("element " << i << ": got " << got[i] << ", expected " << expected[i]);
      return;
    }
  }
}

struct State {
  std::vector<Tensor> params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs;
  std::vector<Reference> refs;
};

// Params of several sizes (40000 spans three chunks of the threaded pass), f32 or bf16.
State make_state(DType param_dtype, bool amsgrad, DType state_dtype = DType::f32) {
  State s;
  for (int64_t n : {1, 31, 257, 40000}) {
    Tensor p = random_tensor({n}, param_dtype);
    s.params.push_back(p);
    s.exp_avgs.push_back(zeros({n}, {.dtype = state_dtype}));
    s.exp_avg_sqs.push_back(zeros({n}, {.dtype = state_dtype}));
    if (amsgrad) s.max_exp_avg_sqs.push_back(zeros({n}, {.dtype = state_dtype}));
    Reference r;
    r.p = values_of(p);
    r.m = r.v = r.vmax = std::vector<double>(n, 0.0);
    s.refs.push_back(r);
  }
  return s;
}

void run_and_compare(DType param_dtype, const AdamWStepOptions& o, bool composite, double rtol, const std::string& what) {
  State s = make_state(param_dtype, o.amsgrad, param_dtype == DType::f64 ? DType::f64 : DType::f32);
  for (int64_t t = 1; t <= 4; ++t) {
    std::vector<Tensor> grads;
    for (size_t k = 0; k < s.params.size(); ++k) {
      grads.push_back(random_tensor(s.params[k].shape(), param_dtype));
      s.refs[k].step(values_of(grads[k]), t, o, param_dtype == DType::bf16);
    }
    if (composite) adamw_step_composite_(s.params, grads, s.exp_avgs, s.exp_avg_sqs, s.max_exp_avg_sqs, t, o);
    else adamw_step_(s.params, grads, s.exp_avgs, s.exp_avg_sqs, s.max_exp_avg_sqs, t, o);
  }
  // The update is lr-sized: compare p with an atol of rtol * lr on top.
  for (size_t k = 0; k < s.params.size(); ++k) {
    const std::string name = what + " param " + std::to_string(k);
    // bf16: the f32 and f64 paths may round p to neighbouring bf16 values once in a while.
    // f32 p rounds to ulp(|p|) ~ 1e-7 each step (|p| <= ~2), which dominates when p ends near 0.
    const double p_atol = param_dtype == DType::bf16 ? 8e-3 : param_dtype == DType::f32 ? 1e-6 : 1e-12;
    expect_near(s.params[k], s.refs[k].p, p_atol, rtol, name + " p");
    expect_near(s.exp_avgs[k], s.refs[k].m, 1e-7, rtol, name + " exp_avg");
    expect_near(s.exp_avg_sqs[k], s.refs[k].v, 1e-8, rtol, name + " exp_avg_sq");
    if (o.amsgrad) expect_near(s.max_exp_avg_sqs[k], s.refs[k].vmax, 1e-8, rtol, name + " max_exp_avg_sq");
  }
}

const std::vector<AdamWStepOptions> kOptions = {
    {.lr = 1e-2, .weight_decay = 0.1},
    {.lr = 3e-3, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.0, .amsgrad = true},
    {.lr = 1e-2, .weight_decay = 0.5, .maximize = true},
    {.lr = 5e-2, .eps = 1e-3, .weight_decay = 0.01, .amsgrad = true, .maximize = true},
};

}  // namespace

TEST_CASE("fused adamw_step_ matches the AdamW formula in float64 on every ISA", "[optim_step][adamw]") {
  for (const std::string& isa : cpu_paths()) {
    CpuPathGuard guard(isa);
    for (size_t c = 0; c < kOptions.size(); ++c) {
      const std::string what = isa + " options " + std::to_string(c);
      run_and_compare(DType::f32, kOptions[c], false, 2e-5, what + " f32");
      run_and_compare(DType::bf16, kOptions[c], false, 1e-2, what + " bf16");
    }
  }
}

TEST_CASE("adamw_step_composite_ matches the formula; f64 and non-contiguous params take it", "[optim_step][adamw]") {
  for (size_t c = 0; c < kOptions.size(); ++c) {
    run_and_compare(DType::f64, kOptions[c], false, 1e-12, "f64 options " + std::to_string(c));
    run_and_compare(DType::f64, kOptions[c], true, 1e-12, "f64 composite options " + std::to_string(c));
    run_and_compare(DType::f32, kOptions[c], true, 2e-5, "f32 composite options " + std::to_string(c));
  }
  // A transposed parameter (not contiguous) updates in place through the composite.
  const AdamWStepOptions o{.lr = 1e-2, .weight_decay = 0.1};
  Tensor base = random_tensor({7, 5}, DType::f32);
  Tensor p = base.t();
  const Tensor before = p.contiguous();
  const Tensor g = random_tensor({5, 7}, DType::f32);
  Tensor m = zeros({5, 7}), v = zeros({5, 7});
  adamw_step_({p}, {g}, {m}, {v}, {}, 1, o);
  Tensor p2 = before.clone(), m2 = zeros({5, 7}), v2 = zeros({5, 7});
  adamw_step_({p2}, {g}, {m2}, {v2}, {}, 1, o);
  CHECK(amax(abs(p - p2)).item<double>() < 1e-6);
  CHECK(!all(p == before).item<bool>());
}

TEST_CASE("adamw_step_ matches torch.optim.AdamW", "[optim_step][adamw]") {
  // torch 1.13: p = tensor([0.5, -1, 2, 0, 3, -0.25, 1e-3]); AdamW([p], lr=0.01, betas=(0.9, 0.99),
  // eps=1e-6, weight_decay=wd, amsgrad, maximize, foreach=False); 5 steps with
  // grad[i] = float32(sin(1.3 t + i) * (1 + i)), t = 1..5.
  struct Case {
    bool amsgrad, maximize;
    double weight_decay;
    std::vector<double> p, m, v;
  };
  const std::vector<double> m_torch = {-0.0129088787, 0.046818532, 0.114615135, 0.071501106,
                                       -0.0944447368, -0.229720563, -0.157387391};
  const std::vector<double> v_torch = {0.024322819, 0.102274284, 0.214217171, 0.384424597,
                                       0.640156031, 0.866406143, 1.1646502};
  std::vector<double> m_neg;
  for (double value : m_torch) m_neg.push_back(-value);
  const std::vector<Case> cases = {
      {false, false, 0.1,
       {0.477256477, -1.0004791, 2.01730037, 0.0217384882, 2.99310946, -0.275447756, -0.0221286826}, m_torch, v_torch},
      {true, false, 0.1,
       {0.477256477, -1.00048947, 2.01730037, 0.0217408836, 2.99310946, -0.275447756, -0.0221319068}, m_torch, v_torch},
      {false, true, 0.0,
       {0.520320833, -0.994496226, 1.97263587, -0.0218140632, 2.99187875, -0.223223552, 0.0242021754}, m_neg, v_torch},
      {true, true, 0.5,
       {0.507585585, -0.969907463, 1.92355013, -0.0214404278, 2.91783333, -0.217440024, 0.0237901229}, m_neg, v_torch},
  };
  for (const std::string& isa : cpu_paths()) {
    CpuPathGuard guard(isa);
    for (const Case& c : cases) {
      INFO(isa << " amsgrad " << c.amsgrad << " maximize " << c.maximize);
      const AdamWStepOptions o{.lr = 0.01, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-6, .weight_decay = c.weight_decay,
                               .amsgrad = c.amsgrad, .maximize = c.maximize};
      Tensor p = tensor({0.5f, -1.0f, 2.0f, 0.0f, 3.0f, -0.25f, 1e-3f}, DType::f32);
      Tensor m = zeros({7}), v = zeros({7}), vmax = zeros({7});
      std::vector<Tensor> vmaxes;
      if (c.amsgrad) vmaxes.push_back(vmax);
      for (int64_t t = 1; t <= 5; ++t) {
        Tensor g = empty({7});
        for (int i = 0; i < 7; ++i) g.data_ptr<float>()[i] = static_cast<float>(std::sin(1.3 * t + i) * (1 + i));
        adamw_step_({p}, {g}, {m}, {v}, vmaxes, t, o);
      }
      expect_near(p, c.p, 2e-7, 2e-6, "p");
      expect_near(m, c.m, 1e-8, 2e-6, "exp_avg");
      expect_near(v, c.v, 1e-8, 2e-6, "exp_avg_sq");
    }
  }
}

TEST_CASE("adamw_step_ bumps versions and checks its arguments", "[optim_step][adamw]") {
  Tensor p = ones({4}).requires_grad_(), g = ones({4}), m = zeros({4}), v = zeros({4});
  const uint64_t version = p.version();
  adamw_step_({p}, {g}, {m}, {v}, {}, 1, {});
  CHECK(p.version() > version);
  CHECK(m.version() > 0);
  CHECK(p.requires_grad());
  check_error([&] { adamw_step_({p}, {g, g}, {m}, {v}, {}, 1, {}); }, {"[adamw_step_] 1 params need as many grads"});
  check_error([&] { adamw_step_({p}, {ones({5})}, {m}, {v}, {}, 1, {}); },
              {"[adamw_step_] grad 0 of shape [5]", "does not match its param of shape [4]"});
  check_error([&] { adamw_step_({p}, {g}, {m}, {v}, {}, 0, {}); }, {"[adamw_step_] step counts from 1, got 0"});
  check_error([&] { adamw_step_({p}, {g}, {m}, {v}, {}, 1, {.amsgrad = true}); },
              {"[adamw_step_] max_exp_avg_sqs must have one tensor per param"});
  check_error([&] { adamw_step_({p}, {g}, {m}, {v}, {}, 1, {.beta2 = 1.0}); }, {"[adamw_step_] betas must be in [0, 1)"});
  // Empty lists and empty tensors are no-ops.
  adamw_step_({}, {}, {}, {}, {}, 1, {});
  Tensor e = zeros({0});
  adamw_step_({e}, {e}, {zeros({0})}, {zeros({0})}, {}, 1, {});
}

TEST_CASE("bf16 params: the f32 step rounded to nearest once", "[optim_step][adamw]") {
  // One step from the same state: bf16 params give the f32 params' result rounded to bf16 (a
  // truncating or mis-rounding store changes about half of them; FMA contraction may differ
  // between the two instantiations now and then, hence the 1% allowance).
  for (const std::string& isa : cpu_paths()) {
    CpuPathGuard guard(isa);
    INFO(isa);
    const int64_t n = 40000;
    Tensor p16 = random_tensor({n}, DType::bf16);
    Tensor p32 = p16.to(DType::f32);
    const Tensor g16 = random_tensor({n}, DType::bf16);
    const Tensor m0 = random_tensor({n}, DType::f32, -0.1, 0.1);
    const Tensor v0 = random_tensor({n}, DType::f32, 0.0, 0.1);
    Tensor m16 = m0.clone(), v16 = v0.clone(), m32 = m0.clone(), v32 = v0.clone();
    const AdamWStepOptions o{.lr = 1e-2, .weight_decay = 0.1};
    adamw_step_({p16}, {g16}, {m16}, {v16}, {}, 3, o);
    adamw_step_({p32}, {g16.to(DType::f32)}, {m32}, {v32}, {}, 3, o);
    const Tensor differs = p16 != p32.to(DType::bf16);
    CHECK(sum(differs.to(DType::i64)).item<int64_t>() <= n / 100);
    CHECK(all(m16 == m32).item<bool>());
  }
}
