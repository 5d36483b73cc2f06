// Schedules, clipping, early stopping and the EMA of weights against their formulas written
// again in double (torch 1.13's for the torch schedules and clipping; the parity program
// tests/parity/optim_parity_dump.cpp compares ~50-step lr sequences with torch itself).
#include <cmath>
#include <limits>
#include <memory>
#include <numbers>
#include <vector>

#include "optim_test_util.h"

using namespace keel;
using namespace keel::optim_test;

namespace {
const double kPi = std::numbers::pi;
}

TEST_CASE("WarmupCosine: linear warmup, cosine decay to min_lr, constant after", "[optim][schedule]") {
  Tensor p = param_of({1.0});
  optim::AdamW opt({p}, {.lr = 0.1});
  optim::WarmupCosine sched(opt, {.warmup_steps = 4, .total_steps = 12, .min_lr = 0.01});
  for (int s = 0; s <= 15; ++s) {
    double expected;
    if (s < 4) expected = 0.1 * s / 4.0;
    else if (s < 12) expected = 0.01 + (0.1 - 0.01) * 0.5 * (1 + std::cos(kPi * (s - 4) / 8.0));
    else expected = 0.01;
    INFO("step " << s);
    CHECK(sched.last_epoch() == s);
    CHECK(opt.lr() == Approx(expected).epsilon(1e-14).margin(1e-16));
    CHECK(sched.get_last_lr()[0] == opt.lr());
    sched.step();
  }
  Tensor q = param_of({1.0});
  optim::SGD sgd({q}, {.lr = 1.0});
  optim::WarmupCosine with_start(sgd, {.warmup_steps = 10, .total_steps = 20, .start_factor = 0.1});
  CHECK(sgd.lr() == Approx(0.1));
  with_start.step();
  CHECK(sgd.lr() == Approx(0.1 + 0.9 / 10));
  CHECK_THROWS_WITH(optim::WarmupCosine(sgd, {.warmup_steps = 30, .total_steps = 20}),
                    Catch::Contains("shorten the warmup"));
  CHECK_THROWS_AS(optim::WarmupCosine(sgd, {.warmup_steps = 0, .total_steps = 0}), Error);
}

TEST_CASE("StepLR and ExponentialLR", "[optim][schedule]") {
  Tensor p = param_of({1.0}), q = param_of({1.0});
  optim::SGD opt({{{p}, {.lr = 1.0}}, {{q}, {.lr = 0.5}}});
  optim::StepLR sched(opt, {.step_size = 3, .gamma = 0.5});
  for (int s = 0; s < 10; ++s) {
    CHECK(opt.lr(0) == Approx(std::pow(0.5, s / 3)));
    CHECK(opt.lr(1) == Approx(0.5 * std::pow(0.5, s / 3)));
    sched.step();
  }
  Tensor r = param_of({1.0});
  optim::SGD opt2({r}, {.lr = 2.0});
  optim::ExponentialLR exp_sched(opt2, {.gamma = 0.9});
  for (int s = 0; s < 10; ++s) {
    CHECK(opt2.lr() == Approx(2.0 * std::pow(0.9, s)));
    exp_sched.step();
  }
}

TEST_CASE("OneCycleLR: lr and momentum cycles, refuses to step past total_steps", "[optim][schedule]") {
  Tensor p = param_of({1.0});
  optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9});
  optim::OneCycleLR sched(opt, {.max_lr = 1.0, .total_steps = 10});
  auto anneal = [](double start, double end, double pct) { return end + (start - end) / 2 * (std::cos(kPi * pct) + 1); };
  const double initial = 1.0 / 25, min_lr = initial / 1e4, end1 = 0.3 * 10 - 1;
  for (int s = 0; s < 10; ++s) {
    const bool up = s <= end1;
    const double pct = up ? s / end1 : (s - end1) / (9 - end1);
    INFO("step " << s);
    CHECK(opt.lr() == Approx(up ? anneal(initial, 1.0, pct) : anneal(1.0, min_lr, pct)).epsilon(1e-13));
    CHECK(*opt.momentum(0) == Approx(up ? anneal(0.95, 0.85, pct) : anneal(0.85, 0.95, pct)).epsilon(1e-13));
    sched.step();
  }
  CHECK_THROWS_WITH(sched.step(), Catch::Contains("total_steps"));
  CHECK(sched.last_epoch() == 10);
}

TEST_CASE("ReduceLROnPlateau: patience, threshold, cooldown, min_lr", "[optim][schedule]") {
  Tensor p = param_of({1.0});
  optim::SGD opt({p}, {.lr = 1.0});
  optim::ReduceLROnPlateau sched(opt, {.factor = 0.5, .patience = 2, .threshold = 0.1, .cooldown = 1, .min_lr = 0.2});
  // best 10 at epoch 1; 9.5 is not better than 10 * (1 - 0.1); bad epochs 1, 2, 3 > patience -> halve.
  const std::vector<double> metrics = {10, 9.5, 9.5, 9.5, 9.5, 9.5, 9.5, 9.5, 9.5, 9.5, 9.5, 9.5};
  const std::vector<double> expected = {1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.2};
  for (size_t e = 0; e < metrics.size(); ++e) {
    sched.step(metrics[e]);
    INFO("epoch " << e);
    CHECK(opt.lr() == Approx(expected[e]));
  }
  CHECK(sched.best() == 10);
  CHECK_THROWS_AS(optim::ReduceLROnPlateau(opt, {.factor = 1.0}), Error);
}

TEST_CASE("clip_grad_norm_ and clip_grad_value_ follow torch", "[optim][clip]") {
  Tensor a = param_of({3.0, 0.0}), b = param_of({1.0}), c = param_of({5.0});
  a.set_grad(f64_of({3.0, -4.0}));
  b.set_grad(f64_of({12.0}));  // c has no grad: ignored
  const Tensor total = optim::clip_grad_norm_({a, b, c}, 6.5);
  CHECK(total.item<double>() == Approx(13.0).epsilon(1e-15));
  const double coef = 6.5 / (13.0 + 1e-6);
  check_close(values_of(a.grad()), {3.0 * coef, -4.0 * coef});
  check_close(values_of(b.grad()), {12.0 * coef});
  // Under max_norm: unchanged (coefficient clamped to 1).
  const Tensor again = optim::clip_grad_norm_({a, b}, 100.0);
  CHECK(again.item<double>() == Approx(6.5 * 13.0 / (13.0 + 1e-6)));
  check_close(values_of(b.grad()), {12.0 * coef});

  a.set_grad(f64_of({3.0, -4.0}));
  b.set_grad(f64_of({-12.0}));
  const Tensor inf_norm = optim::clip_grad_norm_({a, b}, 6.0, std::numeric_limits<double>::infinity());
  CHECK(inf_norm.item<double>() == 12.0);
  check_close(values_of(b.grad()), {-12.0 * 6.0 / (12.0 + 1e-6)});

  a.set_grad(f64_of({3.0, -4.0}));
  const Tensor l1 = optim::clip_grad_norm_({a}, 100.0, 1.0);
  CHECK(l1.item<double>() == Approx(7.0));

  a.set_grad(f64_of({0.5, -4.0}));
  optim::clip_grad_value_({a, c}, 1.0);
  CHECK(values_of(a.grad()) == std::vector<double>{0.5, -1.0});

  CHECK(optim::clip_grad_norm_({c}, 1.0).item<double>() == 0.0);
  a.set_grad(f64_of({std::numeric_limits<double>::infinity(), 1.0}));
  CHECK_THROWS_WITH(optim::clip_grad_norm_({a}, 1.0, 2.0, true), Catch::Contains("cannot be clipped"));
}

TEST_CASE("EarlyStopping keeps and restores the best weights", "[optim][early_stopping]") {
  Tensor w = param_of({1.0, 2.0});
  optim::EarlyStopping stopper({.patience = 2, .min_delta = 0.01});
  auto set_w = [&](double x) {
    NoGradGuard no_grad;
    w.fill_(x);
  };
  set_w(1.0);
  CHECK(!stopper.step(0.9, {w}));
  set_w(2.0);
  CHECK(!stopper.step(0.5, {w}));  // best
  set_w(3.0);
  CHECK(!stopper.step(0.495, {w}));  // not better by min_delta
  set_w(4.0);
  CHECK(stopper.step(0.6, {w}));     // second bad epoch: stop
  CHECK(stopper.should_stop());
  CHECK(stopper.best_metric() == 0.5);
  CHECK(stopper.best_epoch() == 1);
  stopper.restore_best({w});
  CHECK(values_of(w) == std::vector<double>{2.0, 2.0});
  CHECK_THROWS_AS(stopper.restore_best({param_of({1.0})}), Error);

  optim::EarlyStopping max_mode({.patience = 1, .mode = optim::PlateauMode::max});
  CHECK(!max_mode.step(0.8, {w}));
  CHECK(!max_mode.step(0.9, {w}));
  CHECK(max_mode.step(0.85, {w}));
  CHECK(max_mode.best_metric() == 0.9);

  optim::EarlyStopping impatient({.patience = 0});
  CHECK(!impatient.step(1.0, {w}));
  CHECK(impatient.step(1.0, {w}));  // the first epoch without improvement
  optim::EarlyStopping diverged({.patience = 2});
  CHECK(!diverged.step(std::nan(""), {w}));
  CHECK(diverged.step(std::nan(""), {w}));  // NaN never improves: stops, with nothing to restore
  CHECK(!diverged.has_best());
  CHECK_THROWS_WITH(diverged.restore_best({w}), Catch::Contains("no best tensors yet"));
}

TEST_CASE("EMA of weights: shadow = decay * shadow + (1 - decay) * param; store / restore", "[optim][ema]") {
  Tensor w = param_of({1.0, -2.0});
  optim::EMA ema({w}, 0.9);
  std::vector<double> shadow = {1.0, -2.0};
  const std::vector<std::vector<double>> values = {{2.0, 0.0}, {3.0, 1.0}, {-1.0, 4.0}};
  for (const auto& v : values) {
    {
      NoGradGuard no_grad;
      w.copy_(f64_of(v));
    }
    ema.update();
    for (size_t i = 0; i < 2; ++i) shadow[i] = 0.9 * shadow[i] + 0.1 * v[i];
    check_close(values_of(ema.shadow()[0]), shadow);
  }
  ema.store({w});
  ema.copy_to({w});
  check_close(values_of(w), shadow);
  ema.restore({w});
  CHECK(values_of(w) == values.back());
  CHECK_THROWS_AS(ema.restore({w}), Error);  // nothing stored
  CHECK_THROWS_AS(optim::EMA({w}, 1.5), Error);
}

TEST_CASE("schedule state_dict resumes the lr sequence", "[optim][schedule]") {
  auto make = [](Tensor p) { return std::make_unique<optim::SGD>(std::vector<Tensor>{p}, optim::SGDOptions{.lr = 0.2}); };
  Tensor p1 = param_of({1.0}), p2 = param_of({1.0});
  auto opt1 = make(p1);
  optim::WarmupCosine sched1(*opt1, {.warmup_steps = 3, .total_steps = 20, .min_lr = 0.01});
  for (int s = 0; s < 7; ++s) sched1.step();
  auto opt2 = make(p2);
  optim::WarmupCosine sched2(*opt2, {.warmup_steps = 3, .total_steps = 20, .min_lr = 0.01});
  opt2->load_state_dict(opt1->state_dict());
  sched2.load_state_dict(sched1.state_dict());
  CHECK(sched2.last_epoch() == 7);
  for (int s = 0; s < 15; ++s) {
    sched1.step();
    sched2.step();
    CHECK(opt1->lr() == opt2->lr());
  }
  CHECK_THROWS_AS(sched2.load_state_dict({{"last_epoch", 3.0}}), Error);  // no base_lr.0

  optim::ReduceLROnPlateau plateau1(*opt1, {.patience = 1}), plateau2(*opt2, {.patience = 1});
  plateau1.step(1.0);
  plateau1.step(2.0);
  plateau2.load_state_dict(plateau1.state_dict());
  CHECK(plateau2.best() == 1.0);
  CHECK(plateau2.num_bad_epochs() == 1);
  const double lr = opt2->lr();
  plateau2.step(3.0);  // the second bad epoch in a row: reduce
  CHECK(opt2->lr() == Approx(lr * 0.1));
}
