// Optimizer parity, step 1 of 2: runs Keel's optimizers, schedules, clipping and GradScaler on
// fixed parameters and fixed gradient sequences and writes everything to <dir>/index.json, for
// tests/parity/compare_torch_optim.py to redo in torch 1.13 and compare.
//
//   {"optimizers": [{"name", "optimizer", "dtype", "groups": [{"params": [indices], "options": {..}}],
//                    "params0": [{"shape", "values"}], "grads": [step][param] (values | null),
//                    "params": [step][param] values after the step}],
//    "schedules":  [{"name", "scheduler", "optimizer", "group_lrs", "momentum", "options",
//                    "metrics" (ReduceLROnPlateau), "lrs": [epoch][group], "momenta": [epoch][group]}],
//    "clips":      [{"name", "kind": "norm"|"value", "max_norm"|"clip_value", "norm_type",
//                    "grads": [values | null], "shapes", "total", "clipped": [values | null]}],
//    "scalers":    [{"name", "options", "params0", "lr", "grads": [step][values], "scale_before",
//                    "stepped", "scale_after", "params"}]}
// Values are written with 17 significant digits (f64 round-trips exactly); inf and NaN as
// Python's json reads them. A gradient of null: the parameter has no grad at that step.
//
// Usage: optim_parity_dump <output folder>
#include <keel/keel.h>

#include "dump_json.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace keel;
using namespace keel::parity;

std::string json_values(const Tensor& t) {
  const Tensor flat = t.detach().to(DType::f64).contiguous().reshape({-1});
  std::string out = "[";
  for (int64_t i = 0; i < flat.numel(); ++i) out += (i ? ", " : "") + json_number(flat.data_ptr<double>()[i]);
  return out + "]";
}

std::string json_doubles(const std::vector<double>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + json_number(values[i]);
  return out + "]";
}

template <typename T, typename F>
std::string json_array(const std::vector<T>& items, F&& item) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + item(items[i]);
  return out + "]";
}

// The fixed data: parameter k's gradient at step s (a smooth pseudo-random pattern with a few
// large entries); params0 likewise. Written out, so the script never recomputes them.
Tensor pattern(const Shape& shape, double seed, DType dtype) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  Tensor t = zeros({n}, {.dtype = DType::f64});
  for (int64_t i = 0; i < n; ++i) {
    const double x = std::sin(1.7 * seed + 0.9 * static_cast<double>(i) + 0.3 * seed * static_cast<double>(i));
    t.data_ptr<double>()[i] = (i % 5 == 3 ? 4.0 : 1.0) * x;
  }
  return t.reshape(shape).to(dtype);
}

const std::vector<Shape> kShapes = {{2, 3}, {4}, {3}};  // group 0: params 0, 1; group 1: param 2
constexpr int kSteps = 10;

// Param 1 has no grad at step 3; param 2 none at steps 0 and 6.
bool has_grad(size_t k, int s) { return !((k == 1 && s == 3) || (k == 2 && (s == 0 || s == 6))); }

struct OptimizerCase {
  std::string name, optimizer;
  DType dtype = DType::f64;
  Args options0, options1;
  std::function<std::unique_ptr<optim::Optimizer>(const std::vector<Tensor>&, const std::vector<Tensor>&)> make;
};

std::string run_optimizer(const OptimizerCase& c) {
  std::vector<Tensor> params;
  for (size_t k = 0; k < kShapes.size(); ++k)
    params.push_back(pattern(kShapes[k], 10.0 + static_cast<double>(k), c.dtype).requires_grad_());
  std::string entry = "{\"name\": " + json_string(c.name) + ", \"optimizer\": " + json_string(c.optimizer) +
                      ", \"dtype\": " + json_string(std::string(dtype_name(c.dtype))) +
                      ", \"groups\": [{\"params\": [0, 1], \"options\": " + c.options0.str() +
                      "}, {\"params\": [2], \"options\": " + c.options1.str() + "}]";
  entry += ", \"params0\": " + json_array(params, [](const Tensor& p) {
    return "{\"shape\": " + json_list(p.shape()) + ", \"values\": " + json_values(p) + "}";
  });
  auto opt = c.make({params[0], params[1]}, {params[2]});
  std::string grads = "[", after = "[";
  for (int s = 0; s < kSteps; ++s) {
    grads += s ? ", [" : "[";
    for (size_t k = 0; k < params.size(); ++k) {
      if (has_grad(k, s)) {
        const Tensor g = pattern(kShapes[k], 100.0 + 7.0 * s + static_cast<double>(k), c.dtype);
        params[k].set_grad(g);
        grads += (k ? ", " : "") + json_values(g);
      } else {
        grads += k ? ", null" : "null";
      }
    }
    grads += "]";
    opt->step();
    opt->zero_grad();
    after += (s ? ", " : "") + json_array(params, json_values);
  }
  return entry + ", \"grads\": " + grads + "], \"params\": " + after + "]}";
}

std::vector<OptimizerCase> optimizer_cases() {
  using optim::ParamGroup;
  std::vector<OptimizerCase> cases;
  auto sgd = [&](const std::string& name, optim::SGDOptions o0, optim::SGDOptions o1) {
    auto args = [](const optim::SGDOptions& o) {
      return Args().set("lr", o.lr).set("momentum", o.momentum).set("dampening", o.dampening)
          .set("weight_decay", o.weight_decay).set("nesterov", o.nesterov).set("maximize", o.maximize);
    };
    cases.push_back({name, "SGD", DType::f64, args(o0), args(o1), [o0, o1](const auto& g0, const auto& g1) {
      return std::unique_ptr<optim::Optimizer>(
          new optim::SGD(std::vector<ParamGroup<optim::SGDOptions>>{{g0, o0}, {g1, o1}}));
    }});
  };
  auto adam_args = [](auto o) {
    return Args().set("lr", o.lr).set("betas", json_doubles({o.beta1, o.beta2})).set("eps", o.eps)
        .set("weight_decay", o.weight_decay).set("amsgrad", o.amsgrad).set("maximize", o.maximize);
  };
  auto adam = [&](const std::string& name, optim::AdamOptions o0, optim::AdamOptions o1) {
    cases.push_back({name, "Adam", DType::f64, adam_args(o0), adam_args(o1), [o0, o1](const auto& g0, const auto& g1) {
      return std::unique_ptr<optim::Optimizer>(
          new optim::Adam(std::vector<ParamGroup<optim::AdamOptions>>{{g0, o0}, {g1, o1}}));
    }});
  };
  auto adamw = [&](const std::string& name, DType dtype, optim::AdamWOptions o0, optim::AdamWOptions o1) {
    cases.push_back({name, "AdamW", dtype, adam_args(o0), adam_args(o1), [o0, o1](const auto& g0, const auto& g1) {
      return std::unique_ptr<optim::Optimizer>(
          new optim::AdamW(std::vector<ParamGroup<optim::AdamWOptions>>{{g0, o0}, {g1, o1}}));
    }});
  };
  sgd("sgd_plain", {.lr = 0.1}, {.lr = 0.03});
  sgd("sgd_momentum_dampening_wd", {.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01},
      {.lr = 0.02, .momentum = 0.5});
  sgd("sgd_nesterov_wd", {.lr = 0.05, .momentum = 0.9, .weight_decay = 0.05, .nesterov = true},
      {.lr = 0.1, .momentum = 0.8, .nesterov = true});
  sgd("sgd_maximize", {.lr = 0.05, .momentum = 0.5, .maximize = true}, {.lr = 0.01, .maximize = true});
  adam("adam_default", {.lr = 0.01}, {.lr = 0.005});
  adam("adam_amsgrad_l2", {.lr = 0.02, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.1, .amsgrad = true},
       {.lr = 0.01, .weight_decay = 0.01});
  adam("adam_maximize", {.lr = 0.01, .maximize = true}, {.lr = 0.02, .amsgrad = true, .maximize = true});
  adamw("adamw_default", DType::f64, {.lr = 0.01, .weight_decay = 0.1}, {.lr = 0.005, .weight_decay = 0});
  adamw("adamw_amsgrad", DType::f64, {.lr = 0.02, .beta1 = 0.85, .beta2 = 0.99, .eps = 1e-7, .weight_decay = 0.05,
                                      .amsgrad = true}, {.lr = 0.01, .amsgrad = true});
  adamw("adamw_maximize", DType::f64, {.lr = 0.01, .maximize = true}, {.lr = 0.01, .weight_decay = 0.2});
  // f32: the fused CPU kernel (f64 runs the composite).
  adamw("adamw_f32_fused", DType::f32, {.lr = 0.01, .weight_decay = 0.1}, {.lr = 0.003, .amsgrad = true});
  return cases;
}

// ---- schedules --------------------------------------------------------------------------------
constexpr int kEpochs = 50;

struct ScheduleCase {
  std::string name, scheduler, optimizer;
  Args options;
  std::vector<double> metrics;  // ReduceLROnPlateau only
  std::function<std::unique_ptr<optim::LRScheduler>(optim::Optimizer&)> make;
  std::function<std::unique_ptr<optim::ReduceLROnPlateau>(optim::Optimizer&)> make_plateau;
};

std::string run_schedule(const ScheduleCase& c) {
  const std::vector<double> group_lrs = {0.1, 0.05};
  Tensor a = zeros({2}, {.dtype = DType::f64}).requires_grad_(), b = zeros({2}, {.dtype = DType::f64}).requires_grad_();
  std::unique_ptr<optim::Optimizer> opt;
  if (c.optimizer == "SGD")
    opt.reset(new optim::SGD(std::vector<optim::ParamGroup<optim::SGDOptions>>{{{a}, {.lr = 0.1, .momentum = 0.9}},
                                                                               {{b}, {.lr = 0.05, .momentum = 0.9}}}));
  else
    opt.reset(new optim::Adam(std::vector<optim::ParamGroup<optim::AdamOptions>>{{{a}, {.lr = 0.1}}, {{b}, {.lr = 0.05}}}));
  std::vector<std::vector<double>> lrs, momenta;
  auto record = [&] {
    lrs.push_back({opt->lr(0), opt->lr(1)});
    momenta.push_back({*opt->momentum(0), *opt->momentum(1)});
  };
  if (c.make) {
    auto sched = c.make(*opt);
    for (int e = 0; e < kEpochs; ++e) {
      if (e) sched->step();
      record();
    }
  } else {
    auto sched = c.make_plateau(*opt);
    for (double m : c.metrics) {
      sched->step(m);
      record();
    }
  }
  auto rows = [](const std::vector<std::vector<double>>& r) { return json_array(r, json_doubles); };
  return "{\"name\": " + json_string(c.name) + ", \"scheduler\": " + json_string(c.scheduler) +
         ", \"optimizer\": " + json_string(c.optimizer) + ", \"group_lrs\": " + json_doubles(group_lrs) +
         ", \"momentum\": 0.9, \"options\": " + c.options.str() + ", \"metrics\": " + json_doubles(c.metrics) +
         ", \"lrs\": " + rows(lrs) + ", \"momenta\": " + rows(momenta) + "}";
}

std::vector<ScheduleCase> schedule_cases() {
  std::vector<ScheduleCase> cases;
  auto warmup_cosine = [&](const std::string& name, optim::WarmupCosineOptions o) {
    cases.push_back({name, "WarmupCosine", "SGD",
                     Args().set("warmup_steps", o.warmup_steps).set("total_steps", o.total_steps)
                         .set("min_lr", o.min_lr).set("start_factor", o.start_factor), {},
                     [o](optim::Optimizer& opt) { return std::make_unique<optim::WarmupCosine>(opt, o); }, {}});
  };
  warmup_cosine("warmup_cosine", {.warmup_steps = 10, .total_steps = 40, .min_lr = 1e-3});
  warmup_cosine("warmup_cosine_start_factor", {.warmup_steps = 7, .total_steps = 60, .min_lr = 0, .start_factor = 0.1});
  warmup_cosine("cosine_no_warmup", {.warmup_steps = 0, .total_steps = 30, .min_lr = 0.01});
  cases.push_back({"step_lr", "StepLR", "SGD", Args().set("step_size", int64_t{7}).set("gamma", 0.5), {},
                   [](optim::Optimizer& opt) {
                     return std::make_unique<optim::StepLR>(opt, optim::StepLROptions{.step_size = 7, .gamma = 0.5});
                   }, {}});
  cases.push_back({"exponential_lr", "ExponentialLR", "Adam", Args().set("gamma", 0.93), {},
                   [](optim::Optimizer& opt) {
                     return std::make_unique<optim::ExponentialLR>(opt, optim::ExponentialLROptions{.gamma = 0.93});
                   }, {}});
  cases.push_back({"one_cycle_sgd", "OneCycleLR", "SGD",
                   Args().set("max_lr", json_doubles({1.0, 0.5})).set("total_steps", int64_t{kEpochs}), {},
                   [](optim::Optimizer& opt) {
                     return std::make_unique<optim::OneCycleLR>(
                         opt, optim::OneCycleLROptions{.max_lrs = {1.0, 0.5}, .total_steps = kEpochs});
                   }, {}});
  cases.push_back({"one_cycle_adam_linear_three_phase", "OneCycleLR", "Adam",
                   Args().set("max_lr", 0.3).set("total_steps", int64_t{kEpochs + 5}).set("pct_start", 0.25)
                       .set("anneal_strategy", "linear").set("three_phase", true).set("div_factor", 10.0)
                       .set("final_div_factor", 100.0).set("base_momentum", 0.8).set("max_momentum", 0.9), {},
                   [](optim::Optimizer& opt) {
                     return std::make_unique<optim::OneCycleLR>(opt, optim::OneCycleLROptions{
                         .max_lr = 0.3, .total_steps = kEpochs + 5, .pct_start = 0.25,
                         .anneal_strategy = optim::AnnealStrategy::linear, .base_momentum = 0.8, .max_momentum = 0.9,
                         .div_factor = 10.0, .final_div_factor = 100.0, .three_phase = true});
                   }, {}});
  cases.push_back({"one_cycle_no_momentum", "OneCycleLR", "SGD",
                   Args().set("max_lr", 2.0).set("total_steps", int64_t{kEpochs}).set("cycle_momentum", false)
                       .set("pct_start", 0.4), {},
                   [](optim::Optimizer& opt) {
                     return std::make_unique<optim::OneCycleLR>(opt, optim::OneCycleLROptions{
                         .max_lr = 2.0, .total_steps = kEpochs, .pct_start = 0.4, .cycle_momentum = false});
                   }, {}});
  // A metric that improves, plateaus (slightly noisy), improves again, then stalls.
  std::vector<double> metrics;
  for (int e = 0; e < kEpochs; ++e) {
    const double base = e < 10 ? 1.0 - 0.05 * e : e < 25 ? 0.55 : e < 32 ? 0.55 - 0.02 * (e - 25) : 0.41;
    metrics.push_back(base + 0.001 * std::sin(3.0 * e));
  }
  cases.push_back({"plateau_min_rel", "ReduceLROnPlateau", "SGD",
                   Args().set("mode", "min").set("factor", 0.5).set("patience", int64_t{3}).set("threshold", 1e-2)
                       .set("threshold_mode", "rel").set("cooldown", int64_t{2}).set("min_lr", 0.004),
                   metrics, {}, [](optim::Optimizer& opt) {
                     return std::make_unique<optim::ReduceLROnPlateau>(opt, optim::ReduceLROnPlateauOptions{
                         .factor = 0.5, .patience = 3, .threshold = 1e-2, .cooldown = 2, .min_lr = 0.004});
                   }});
  std::vector<double> negated;
  for (double m : metrics) negated.push_back(-m);
  cases.push_back({"plateau_max_abs", "ReduceLROnPlateau", "Adam",
                   Args().set("mode", "max").set("factor", 0.3).set("patience", int64_t{2}).set("threshold", 5e-3)
                       .set("threshold_mode", "abs").set("cooldown", int64_t{0}).set("min_lr", 0.0),
                   negated, {}, [](optim::Optimizer& opt) {
                     return std::make_unique<optim::ReduceLROnPlateau>(opt, optim::ReduceLROnPlateauOptions{
                         .mode = optim::PlateauMode::max, .factor = 0.3, .patience = 2, .threshold = 5e-3,
                         .threshold_mode = optim::ThresholdMode::abs});
                   }});
  return cases;
}

// ---- clipping ---------------------------------------------------------------------------------
std::string run_clip(const std::string& name, bool by_norm, double limit, double norm_type) {
  std::vector<Tensor> params;
  std::string grads = "[", shapes = "[";
  for (size_t k = 0; k < 4; ++k) {
    const Shape shape = k == 0 ? Shape{3, 2} : k == 1 ? Shape{5} : Shape{2};
    Tensor p = zeros(shape, {.dtype = DType::f64}).requires_grad_();
    shapes += (k ? ", " : "") + json_list(shape);
    if (k != 2) {  // param 2 has no grad
      const Tensor g = pattern(shape, 50.0 + static_cast<double>(k), DType::f64) * 3.0;
      p.set_grad(g);
      grads += (k ? ", " : "") + json_values(g);
    } else {
      grads += ", null";
    }
    params.push_back(p);
  }
  std::string entry = "{\"name\": " + json_string(name) + ", \"kind\": " + json_string(by_norm ? "norm" : "value") +
                      ", \"limit\": " + json_number(limit) + ", \"norm_type\": " + json_number(norm_type) +
                      ", \"shapes\": " + shapes + "], \"grads\": " + grads + "]";
  if (by_norm) entry += ", \"total\": " + json_number(optim::clip_grad_norm_(params, limit, norm_type).item<double>());
  else optim::clip_grad_value_(params, limit);
  return entry + ", \"clipped\": " + json_array(params, [](const Tensor& p) {
    return p.grad().defined() ? json_values(p.grad()) : std::string("null");
  }) + "}";
}

// ---- GradScaler -------------------------------------------------------------------------------
std::string run_scaler() {
  const double inf = std::numeric_limits<double>::infinity();
  Tensor w = pattern({5}, 3.0, DType::f32).requires_grad_();
  const std::string params0 = json_values(w);
  optim::SGD opt({w}, {.lr = 0.01, .momentum = 0.9});
  optim::GradScaler scaler({.init_scale = 256.0, .growth_factor = 2.0, .backoff_factor = 0.5, .growth_interval = 3});
  std::string grads = "[", before = "[", stepped = "[", after = "[", params = "[";
  for (int s = 0; s < 16; ++s) {
    // Unscaled grads; times the scale, as backward of scale(loss) gives. Inf / NaN at steps 4, 5, 11.
    Tensor g = pattern({5}, 200.0 + s, DType::f32) * scaler.get_scale();
    if (s == 4 || s == 11) g.data_ptr<float>()[2] = static_cast<float>(inf);
    if (s == 5) g.data_ptr<float>()[0] = std::nanf("");
    w.set_grad(g);
    const std::string sep = s ? ", " : "";
    grads += sep + json_values(g);
    before += sep + json_number(scaler.get_scale());
    stepped += sep + (scaler.step(opt) ? "true" : "false");
    scaler.update();
    after += sep + json_number(scaler.get_scale());
    params += sep + json_values(w);
  }
  return "{\"name\": \"grad_scaler_sgd\", \"options\": " +
         Args().set("init_scale", 256.0).set("growth_factor", 2.0).set("backoff_factor", 0.5)
             .set("growth_interval", int64_t{3}).str() +
         ", \"lr\": 0.01, \"momentum\": 0.9, \"params0\": " + params0 + ", \"grads\": " + grads +
         "], \"scale_before\": " + before + "], \"stepped\": " + stepped + "], \"scale_after\": " + after +
         "], \"params\": " + params + "]}";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: optim_parity_dump <output folder>\n";
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);
    std::ofstream out(dir / "index.json", std::ios::trunc);
    out << "{\"optimizers\": " << json_array(optimizer_cases(), run_optimizer);
    out << ",\n \"schedules\": " << json_array(schedule_cases(), run_schedule);
    const double inf = std::numeric_limits<double>::infinity();
    out << ",\n \"clips\": ["
        << run_clip("norm2_clipped", true, 2.0, 2.0) << ", " << run_clip("norm2_unclipped", true, 1e3, 2.0) << ", "
        << run_clip("norm1", true, 3.0, 1.0) << ", " << run_clip("norm3.5", true, 1.5, 3.5) << ", "
        << run_clip("norm_inf", true, 2.5, inf) << ", " << run_clip("value", false, 1.5, 0.0) << "]";
    out << ",\n \"scalers\": [" << run_scaler() << "]}\n";
    if (!out) throw std::runtime_error("cannot write " + (dir / "index.json").string());
  } catch (const std::exception& error) {
    std::cerr << "optim_parity_dump: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
