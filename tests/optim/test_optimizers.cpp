// SGD, Adam and AdamW against torch 1.13's formulas written again on doubles (f64 parameters,
// two or three steps), skipped parameters without a grad, parameter groups with their own lrs,
// a state_dict round trip that resumes bit for bit, and invalid options. The torch parity
// program (tests/parity/optim_parity_dump.cpp) checks longer runs against torch itself.
#include <cmath>
#include <memory>
#include <vector>

#include "optim_test_util.h"

using namespace keel;
using namespace keel::optim_test;

namespace {

const std::vector<double> kP0 = {0.5, -1.25, 2.0, 0.0};
const std::vector<std::vector<double>> kGrads = {{0.1, -0.2, 0.3, -0.4}, {-0.5, 0.25, 0.05, 1.5}, {0.3, 0.3, -0.7, 0.2}};

void set_grad(Tensor& p, const std::vector<double>& g) { p.set_grad(f64_of(g)); }

struct SgdRef {
  std::vector<double> p, buf;
  bool has_buf = false;
  void step(const std::vector<double>& grad, const optim::SGDOptions& o) {
    std::vector<double> d(p.size());
    for (size_t i = 0; i < p.size(); ++i) d[i] = (o.maximize ? -grad[i] : grad[i]) + o.weight_decay * p[i];
    if (o.momentum != 0) {
      if (!has_buf) buf = d, has_buf = true;
      else for (size_t i = 0; i < p.size(); ++i) buf[i] = o.momentum * buf[i] + (1 - o.dampening) * d[i];
      for (size_t i = 0; i < p.size(); ++i) d[i] = o.nesterov ? d[i] + o.momentum * buf[i] : buf[i];
    }
    for (size_t i = 0; i < p.size(); ++i) p[i] -= o.lr * d[i];
  }
};

struct AdamRef {
  std::vector<double> p, m, v, vmax;
  int t = 0;
  void step(const std::vector<double>& grad, double lr, double b1, double b2, double eps, double wd, bool amsgrad,
            bool decoupled) {
    ++t;
    if (m.empty()) m.assign(p.size(), 0), v.assign(p.size(), 0), vmax.assign(p.size(), 0);
    const double bc1 = 1 - std::pow(b1, t), bc2_sqrt = std::sqrt(1 - std::pow(b2, t));
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      if (decoupled) p[i] *= 1 - lr * wd;
      else g += wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      double second = v[i];
      if (amsgrad) second = vmax[i] = std::max(vmax[i], v[i]);
      p[i] -= lr / bc1 * m[i] / (std::sqrt(second) / bc2_sqrt + eps);
    }
  }
};

}  // namespace

TEST_CASE("SGD follows torch's formula (momentum, dampening, nesterov, weight decay, maximize)", "[optim]") {
  const std::vector<optim::SGDOptions> variants = {
      {.lr = 0.1},
      {.lr = 0.1, .momentum = 0.9},
      {.lr = 0.05, .momentum = 0.9, .dampening = 0.3, .weight_decay = 0.01},
      {.lr = 0.05, .momentum = 0.8, .weight_decay = 0.1, .nesterov = true},
      {.lr = 0.1, .momentum = 0.5, .maximize = true},
  };
  for (size_t k = 0; k < variants.size(); ++k) {
    INFO("variant " << k);
    Tensor p = param_of(kP0);
    optim::SGD opt({p}, variants[k]);
    SgdRef ref{kP0};
    for (const auto& g : kGrads) {
      set_grad(p, g);
      opt.step();
      ref.step(g, variants[k]);
      check_close(values_of(p), ref.p);
    }
    CHECK(opt.state(0, 0).step == 3);
    CHECK(opt.state(0, 0).tensors.count("momentum_buffer") == (variants[k].momentum != 0 ? 1u : 0u));
  }
}

TEST_CASE("Adam follows torch's formula (L2 weight decay, amsgrad)", "[optim]") {
  for (bool amsgrad : {false, true}) {
    for (double wd : {0.0, 0.1}) {
      INFO("amsgrad " << amsgrad << " weight_decay " << wd);
      Tensor p = param_of(kP0);
      optim::Adam opt({p}, {.lr = 0.01, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = wd, .amsgrad = amsgrad});
      AdamRef ref{kP0};
      for (const auto& g : kGrads) {
        set_grad(p, g);
        opt.step();
        ref.step(g, 0.01, 0.8, 0.95, 1e-6, wd, amsgrad, false);
        check_close(values_of(p), ref.p);
      }
    }
  }
}

TEST_CASE("AdamW follows torch's formula (decoupled weight decay, amsgrad), f64 and f32 (fused kernel)", "[optim]") {
  for (DType dtype : {DType::f64, DType::f32}) {
    for (bool amsgrad : {false, true}) {
      INFO(dtype_name(dtype) << " amsgrad " << amsgrad);
      Tensor p = param_of(kP0).detach().to(dtype).requires_grad_();
      optim::AdamW opt({p}, {.lr = 0.01, .weight_decay = 0.1, .amsgrad = amsgrad});
      AdamRef ref{kP0};
      for (const auto& g : kGrads) {
        p.set_grad(f64_of(g).to(dtype));
        opt.step();
        ref.step(g, 0.01, 0.9, 0.999, 1e-8, 0.1, amsgrad, true);
        check_close(values_of(p), ref.p, dtype == DType::f64 ? 1e-12 : 1e-6);
      }
    }
  }
}

TEST_CASE("optimizers skip parameters without a grad, as PyTorch", "[optim]") {
  Tensor a = param_of(kP0), b = param_of({1.0, 2.0});
  optim::AdamW opt({a, b}, {.lr = 0.01});
  set_grad(a, kGrads[0]);
  opt.step();  // b has no grad: unchanged, no state, no step counted
  CHECK(values_of(b) == std::vector<double>{1.0, 2.0});
  CHECK(opt.state(0, 1).step == 0);
  CHECK(opt.state(0, 1).tensors.empty());
  CHECK(opt.state(0, 0).step == 1);
  // Next step both have grads; b takes its first step (t = 1) while a takes its second, as torch.
  set_grad(a, kGrads[1]);
  set_grad(b, {0.5, -0.5});
  opt.step();
  AdamRef ref_a{kP0}, ref_b{{1.0, 2.0}};
  ref_a.step(kGrads[0], 0.01, 0.9, 0.999, 1e-8, 0.01, false, true);
  ref_a.step(kGrads[1], 0.01, 0.9, 0.999, 1e-8, 0.01, false, true);
  ref_b.step({0.5, -0.5}, 0.01, 0.9, 0.999, 1e-8, 0.01, false, true);
  check_close(values_of(a), ref_a.p);
  check_close(values_of(b), ref_b.p);
  CHECK(opt.state(0, 0).step == 2);
  CHECK(opt.state(0, 1).step == 1);

  Tensor c = param_of(kP0);
  optim::SGD sgd({c}, {.lr = 0.1, .momentum = 0.9});
  sgd.step();
  CHECK(values_of(c) == kP0);
  CHECK(sgd.state(0, 0).tensors.empty());
}

TEST_CASE("parameter groups keep their own options and lrs", "[optim]") {
  Tensor a = param_of(kP0), b = param_of(kP0);
  optim::SGD opt({{{a}, {.lr = 0.1}}, {{b}, {.lr = 0.01, .momentum = 0.9}}});
  REQUIRE(opt.num_param_groups() == 2);
  CHECK(opt.lr(0) == 0.1);
  CHECK(opt.lr(1) == 0.01);
  SgdRef ref_a{kP0}, ref_b{kP0};
  for (const auto& g : kGrads) {
    set_grad(a, g);
    set_grad(b, g);
    opt.step();
    ref_a.step(g, {.lr = 0.1});
    ref_b.step(g, {.lr = 0.01, .momentum = 0.9});
  }
  check_close(values_of(a), ref_a.p);
  check_close(values_of(b), ref_b.p);

  Tensor c = param_of({3.0});
  opt.add_param_group({{c}, {.lr = 1.0}});
  opt.set_lr(0.5, 2);
  CHECK(opt.lr(2) == 0.5);
  set_grad(c, {2.0});
  opt.step();
  check_close(values_of(c), {2.0});
  CHECK_THROWS_AS(opt.add_param_group({{a}, {.lr = 1.0}}), Error);  // already in group 0
  CHECK(opt.num_param_groups() == 3);

  opt.zero_grad();
  CHECK(!a.grad().defined());
  set_grad(a, kGrads[0]);
  opt.zero_grad(false);
  CHECK(values_of(a.grad()) == std::vector<double>(4, 0.0));
}

TEST_CASE("state_dict round trip resumes bit for bit", "[optim]") {
  auto run = [](auto make_optimizer) {
    Tensor p1 = param_of(kP0), q1 = param_of({1.0, -1.0, 0.5});
    auto opt1 = make_optimizer(std::vector<Tensor>{p1, q1});
    auto grads_at = [](int step) {
      return std::pair{f64_of({0.1 * step, -0.2, 0.3 / (step + 1), -0.4}), f64_of({0.05 * step - 0.1, 0.7, -0.3})};
    };
    for (int s = 0; s < 3; ++s) {
      auto [gp, gq] = grads_at(s);
      p1.set_grad(gp);
      if (s != 1) q1.set_grad(gq);  // q skips a step: its step count lags
      else q1.zero_grad();
      opt1->step();
    }
    const optim::OptimizerState saved = opt1->state_dict();
    CHECK(saved.steps.at("state.0.step") == 3);
    CHECK(saved.steps.at("state.1.step") == 2);
    // A second optimizer on copies of the parameters, loaded from the state, continues identically.
    Tensor p2 = p1.detach().clone().requires_grad_(), q2 = q1.detach().clone().requires_grad_();
    auto opt2 = make_optimizer(std::vector<Tensor>{p2, q2});
    opt2->set_lr(123.0, 0);  // restored by load_state_dict
    opt2->load_state_dict(saved);
    CHECK(opt2->lr(0) == opt1->lr(0));
    for (int s = 3; s < 6; ++s) {
      auto [gp, gq] = grads_at(s);
      p1.set_grad(gp), p2.set_grad(gp.clone());
      q1.set_grad(gq), q2.set_grad(gq.clone());
      opt1->step();
      opt2->step();
    }
    CHECK(values_of(p1) == values_of(p2));  // exact
    CHECK(values_of(q1) == values_of(q2));
    // The saved state did not move with the optimizer (it holds copies).
    CHECK(opt1->state_dict().steps.at("state.0.step") == 6);
    CHECK(saved.steps.at("state.0.step") == 3);
  };
  SECTION("SGD") {
    run([](std::vector<Tensor> ps) {
      return std::make_unique<optim::SGD>(ps, optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
    });
  }
  SECTION("Adam") {
    run([](std::vector<Tensor> ps) {
      return std::make_unique<optim::Adam>(ps, optim::AdamOptions{.lr = 0.01, .amsgrad = true});
    });
  }
  SECTION("AdamW") {
    run([](std::vector<Tensor> ps) {
      return std::make_unique<optim::AdamW>(ps, optim::AdamWOptions{.lr = 0.01, .weight_decay = 0.1});
    });
  }
}

TEST_CASE("load_state_dict refuses a state of other parameters and changes nothing", "[optim]") {
  Tensor p = param_of(kP0);
  optim::Adam opt({p}, {.lr = 0.01});
  set_grad(p, kGrads[0]);
  opt.step();
  optim::OptimizerState good = opt.state_dict();

  optim::OptimizerState wrong_shape = good;
  wrong_shape.tensors["state.0.exp_avg"] = zeros({3}, {.dtype = DType::f64});
  optim::OptimizerState unknown = good;
  unknown.tensors["state.7.exp_avg"] = zeros({4}, {.dtype = DType::f64});
  optim::OptimizerState no_groups = good;
  no_groups.groups.clear();
  optim::OptimizerState bad_beta = good;
  bad_beta.groups["param_groups.0.momentum"] = 1.5;

  Tensor q = param_of(kP0);
  optim::Adam fresh({q}, {.lr = 0.5});
  for (const auto* bad : {&wrong_shape, &unknown, &no_groups, &bad_beta}) {
    CHECK_THROWS_AS(fresh.load_state_dict(*bad), Error);
    CHECK(fresh.lr(0) == 0.5);
    CHECK(fresh.momentum(0) == 0.9);
    CHECK(fresh.state(0, 0).tensors.empty());
  }
  fresh.load_state_dict(good);
  CHECK(fresh.state(0, 0).step == 1);
  CHECK(fresh.lr(0) == 0.01);
}

TEST_CASE("state_dict carries every group option and load_state_dict restores them, as torch's param_groups", "[optim]") {
  Tensor p = param_of(kP0), q = param_of(kP0);
  optim::AdamW saved_from({p}, {.lr = 0.01, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.3, .amsgrad = true});
  const optim::OptimizerState state = saved_from.state_dict();
  CHECK(state.groups.at("param_groups.0.beta2") == 0.95);
  CHECK(state.groups.at("param_groups.0.eps") == 1e-6);
  CHECK(state.groups.at("param_groups.0.weight_decay") == 0.3);
  CHECK(state.groups.at("param_groups.0.amsgrad") == 1.0);
  CHECK(state.groups.at("param_groups.0.maximize") == 0.0);
  optim::AdamW loaded({q}, {.lr = 0.5});
  loaded.load_state_dict(state);
  CHECK(loaded.options().beta1 == 0.8);
  CHECK(loaded.options().beta2 == 0.95);
  CHECK(loaded.options().eps == 1e-6);
  CHECK(loaded.options().weight_decay == 0.3);
  CHECK(loaded.options().amsgrad);
  CHECK(loaded.lr() == 0.01);

  // SGD: nesterov is valid only with its momentum, so both come back together, either way round.
  Tensor a = param_of(kP0), b = param_of(kP0);
  optim::SGD nesterov({a}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01, .nesterov = true});
  optim::SGD plain({b}, {.lr = 0.2});
  const optim::OptimizerState nesterov_state = nesterov.state_dict(), plain_state = plain.state_dict();
  plain.load_state_dict(nesterov_state);
  CHECK(plain.options().nesterov);
  CHECK(plain.options().momentum == 0.9);
  CHECK(plain.options().weight_decay == 0.01);
  nesterov.load_state_dict(plain_state);
  CHECK_FALSE(nesterov.options().nesterov);
  CHECK(nesterov.options().momentum == 0.0);

  // A flag that is not 0 / 1, or options that do not validate: an error, and nothing changes.
  optim::OptimizerState bad_flag = nesterov_state;
  bad_flag.groups["param_groups.0.nesterov"] = 0.5;
  optim::OptimizerState bad_combination = nesterov_state;
  bad_combination.groups["param_groups.0.momentum"] = 0.0;  // nesterov without momentum
  for (const auto* bad : {&bad_flag, &bad_combination}) {
    CHECK_THROWS_AS(nesterov.load_state_dict(*bad), Error);
    CHECK_FALSE(nesterov.options().nesterov);
    CHECK(nesterov.options().momentum == 0.0);
    CHECK(nesterov.lr() == 0.2);
  }
  // A state saved without the options (only lr and momentum) keeps the optimizer's own.
  optim::OptimizerState old_style;
  old_style.groups = {{"param_groups.0.lr", 0.05}, {"param_groups.0.momentum", 0.5}};
  nesterov.load_state_dict(old_style);
  CHECK(nesterov.lr() == 0.05);
  CHECK(nesterov.options().momentum == 0.5);
  CHECK(nesterov.options().weight_decay == 0.0);
}

TEST_CASE("invalid optimizer options throw keel::Error saying what to fix", "[optim]") {
  Tensor p = param_of(kP0);
  CHECK_THROWS_WITH(optim::SGD({p}, {.lr = -0.1}), Catch::Contains("lr must be >= 0"));
  CHECK_THROWS_WITH(optim::SGD({p}, {.lr = 0.1, .nesterov = true}), Catch::Contains("nesterov needs momentum"));
  CHECK_THROWS_WITH(optim::SGD({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                    Catch::Contains("dampening = 0"));
  CHECK_THROWS_WITH(optim::SGD({p}, {.lr = 0.1, .weight_decay = -1}), Catch::Contains("weight_decay must be >= 0"));
  CHECK_THROWS_WITH(optim::Adam({p}, {.beta1 = 1.0}), Catch::Contains("beta1 must be in [0, 1)"));
  CHECK_THROWS_WITH(optim::AdamW({p}, {.beta2 = -0.1}), Catch::Contains("beta2 must be in [0, 1)"));
  CHECK_THROWS_WITH(optim::AdamW({p}, {.eps = -1e-8}), Catch::Contains("eps must be >= 0"));
  CHECK_THROWS_WITH(optim::AdamW(std::vector<Tensor>{}), Catch::Contains("empty parameter list"));
  CHECK_THROWS_WITH(optim::AdamW({p, p}), Catch::Contains("appears twice"));
  CHECK_THROWS_WITH(optim::SGD({p * 2.0}), Catch::Contains("not a leaf"));
  CHECK_THROWS_WITH(optim::SGD({zeros({2}, {.dtype = DType::i64})}), Catch::Contains("only floating"));
  optim::AdamW opt({p});
  CHECK_THROWS_AS(opt.set_lr(-1.0), Error);
  CHECK(opt.lr() == 1e-3);
  CHECK_THROWS_AS(opt.set_momentum(1.0, 0), Error);
}

TEST_CASE("a group index out of range is a keel::Error", "[optim]") {
  Tensor p = param_of(kP0);
  optim::SGD opt({p}, {.lr = 0.1});
  CHECK_THROWS_WITH(opt.lr(1), Catch::Contains("no parameter group 1"));
  CHECK_THROWS_AS(opt.set_lr(0.1, 3), Error);
  CHECK_THROWS_AS(opt.set_momentum(0.5, 2), Error);
  CHECK_THROWS_AS(opt.params(1), Error);
  CHECK_THROWS_AS(opt.state(0, 9), Error);
}
