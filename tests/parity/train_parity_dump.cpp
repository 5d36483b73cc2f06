// Training parity dump: trains a small MLP and a small CNN (BatchNorm in training mode) for 20
// steps with SGD (momentum), SGD (nesterov) and AdamW, each under a WarmupCosine schedule, in f32
// (the real path, AdamW's fused kernel included) and f64, every run from the same initial
// weights on the same 20 batches. compare_torch_train.py redoes every run in torch 1.13 from the
// written weights and batches and compares the loss at every step and the final state.
//
//   <dir>/index.json  {"models": [{"id", "kind", "args", "initial": {name: t}, "inputs": t, "labels": t}],
//                      "runs": [{"id", "model", "optimizer", "options", "schedule", "dtype",
//                                "losses": t, "lrs": t, "eval_loss", "final": {name: t}}]}
//   <dir>/data.bin    every tensor as float64, contiguous, little-endian; t = {"offset" (bytes), "shape"}
// "initial" / "final" are state_dicts (parameters and BatchNorm buffers, PyTorch's names);
// "inputs" is [steps, batch, ...], "labels" [steps, batch]; "lrs" the lr each step ran with;
// "eval_loss" the trained model's loss in evaluation mode (running statistics) on the first batch.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>

#include "dump_json.h"

using namespace keel;
using parity::Args;
using parity::json_list;
using parity::json_string;

namespace {

constexpr int64_t kSteps = 20;
constexpr int64_t kBatch = 16;
constexpr int64_t kClasses = 10;
const std::vector<int64_t> kMlpSizes = {64, 48, kClasses};

class Dump : public parity::F64Dump {
 public:
  explicit Dump(const std::filesystem::path& dir) : F64Dump(dir, {"models", "runs"}) {}
  std::string state_entry(const nn::StateDict& state) {
    std::string out;
    for (const auto& [name, t] : state) out += (out.empty() ? "" : ", ") + json_string(name) + ": " + tensor_entry(t);
    return "{" + out + "}";
  }
  void add_model(const std::string& raw) { add("models", raw); }
  void add_run(const std::string& raw) { add("runs", raw); }
};

// A model to train: how to build it (with its own seeded initialisation), the input shape of one
// example, and the args the script needs to build the same torch module.
struct ModelSpec {
  std::string id, kind;
  Args args;
  std::function<std::unique_ptr<nn::Module>()> make;
  Shape example;
};

// One optimizer configuration: its name and options for the script (written from the same
// option struct the optimizer is built with), and how to build it.
struct OptimSpec {
  std::string id, name;
  Args options;
  std::function<std::unique_ptr<optim::Optimizer>(const std::vector<Tensor>&)> make;
};

OptimSpec sgd_spec(const std::string& id, const optim::SGDOptions& o) {
  return {id, "SGD",
          Args().set("lr", o.lr).set("momentum", o.momentum).set("weight_decay", o.weight_decay).set("nesterov", o.nesterov),
          [o](const std::vector<Tensor>& ps) -> std::unique_ptr<optim::Optimizer> { return std::make_unique<optim::SGD>(ps, o); }};
}

OptimSpec adamw_spec(const std::string& id, const optim::AdamWOptions& o) {
  return {id, "AdamW",
          Args().set("lr", o.lr).set("betas", "[" + parity::json_number(o.beta1) + ", " + parity::json_number(o.beta2) + "]")
              .set("eps", o.eps).set("weight_decay", o.weight_decay),
          [o](const std::vector<Tensor>& ps) -> std::unique_ptr<optim::Optimizer> { return std::make_unique<optim::AdamW>(ps, o); }};
}

// 3 warmup steps from a tenth of the base lr, cosine down to min_lr = base / 10 (> 0, so that
// the tail is not flat at 0) at the last step.
optim::WarmupCosineOptions schedule_of(double base) {
  return {.warmup_steps = 3, .total_steps = kSteps, .min_lr = base / 10, .start_factor = 0.1};
}

Tensor f64_vector(const std::vector<double>& values) {
  Tensor t = empty({static_cast<int64_t>(values.size())}, {.dtype = DType::f64});
  std::copy(values.begin(), values.end(), t.data_ptr<double>());
  return t;
}

// Labels from a fixed random linear teacher (argmax of x W), so that there is something to
// learn (the loss falls, noisily, over the 20 steps) rather than noise to memorise.
Tensor teacher_labels(const Tensor& inputs, const Tensor& teacher) {
  const Tensor flat = inputs.reshape({kSteps * kBatch, -1});
  return argmax(matmul(flat, teacher), 1).reshape({kSteps, kBatch});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: train_parity_dump <output dir>\n";
    return 2;
  }
  try {
    manual_seed(2026);
    Dump dump(argv[1]);

    const std::vector<ModelSpec> models = {
        {"mlp", "MLP", Args().set("sizes", kMlpSizes), [] { return std::make_unique<nn::MLP>(kMlpSizes); }, Shape{kMlpSizes[0]}},
        {"small_cnn", "SmallCNN",
         Args().set("channels", std::vector<int64_t>{4, 8}).set("convs_per_stage", int64_t{1}).set("image_size", int64_t{12}),
         [] {
           return std::make_unique<nn::SmallCNN>(
               nn::SmallCNNOptions{.channels = {4, 8}, .convs_per_stage = 1, .dropout = 0, .num_classes = kClasses, .image_size = 12});
         },
         Shape{1, 12, 12}},
    };

    const std::vector<OptimSpec> optimizers = {
        sgd_spec("sgd", {.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4}),
        sgd_spec("sgd_nesterov", {.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-4, .nesterov = true}),
        adamw_spec("adamw", {.lr = 3e-3, .weight_decay = 1e-2}),  // default betas and eps
    };

    for (const ModelSpec& spec : models) {
      // Keel's own seeded initialisation (f32), kept as a deep copy: every run starts from it.
      nn::StateDict initial;
      {
        const auto model = spec.make();
        for (const auto& [name, t] : model->state_dict()) initial.emplace_back(name, t.clone());
      }
      // 20 fixed batches, drawn in f32 (so that the f32 runs of both sides see the same values)
      // and written once; the f64 runs use the same values.
      Shape shape{kSteps, kBatch};
      shape.insert(shape.end(), spec.example.begin(), spec.example.end());
      const Tensor inputs = randn(shape);
      const Tensor labels = teacher_labels(inputs, randn({inputs.numel() / (kSteps * kBatch), kClasses}));
      dump.add_model("{\"id\": " + json_string(spec.id) + ", \"kind\": " + json_string(spec.kind) + ", \"args\": " +
                     spec.args.str() + ", \"initial\": " + dump.state_entry(initial) + ", \"inputs\": " +
                     dump.tensor_entry(inputs) + ", \"labels\": " + dump.tensor_entry(labels) + "}");

      for (const OptimSpec& ospec : optimizers) {
        for (DType dtype : {DType::f32, DType::f64}) {
          const auto model = spec.make();
          model->load_state_dict(initial);
          model->to(dtype);  // before the optimizer: to() puts new tensors in the slots
          model->train();
          const auto opt = ospec.make(model->parameters());
          const optim::WarmupCosineOptions sched_options = schedule_of(opt->lr(0));
          optim::WarmupCosine sched(*opt, sched_options);
          const Tensor xs = inputs.to(dtype);
          std::vector<double> losses, lrs;
          for (int64_t step = 0; step < kSteps; ++step) {
            lrs.push_back(opt->lr(0));
            const Tensor loss = cross_entropy((*model)(xs.select(0, step)), labels.select(0, step));
            opt->zero_grad();
            loss.backward();
            opt->step();
            sched.step();
            losses.push_back(loss.item<double>());
          }
          // The running statistics at work: the trained model in evaluation mode on the first batch.
          double eval_loss = 0;
          {
            model->eval();
            NoGradGuard no_grad;
            eval_loss = cross_entropy((*model)(xs.select(0, 0)), labels.select(0, 0)).item<double>();
          }
          const std::string id = spec.id + "_" + ospec.id + "_" + std::string(dtype_name(dtype));
          const Args schedule = Args()
                                    .set("warmup_steps", sched_options.warmup_steps)
                                    .set("total_steps", sched_options.total_steps)
                                    .set("min_lr", sched_options.min_lr)
                                    .set("start_factor", sched_options.start_factor);
          dump.add_run("{\"id\": " + json_string(id) + ", \"model\": " + json_string(spec.id) + ", \"optimizer\": " +
                       json_string(ospec.name) + ", \"options\": " + ospec.options.str() + ", \"schedule\": " + schedule.str() +
                       ", \"dtype\": " + json_string(std::string(dtype_name(dtype))) + ", \"losses\": " +
                       dump.tensor_entry(f64_vector(losses)) + ", \"lrs\": " + dump.tensor_entry(f64_vector(lrs)) +
                       ", \"eval_loss\": " + parity::json_number(eval_loss) + ", \"final\": " +
                       dump.state_entry(model->state_dict()) + "}");
        }
      }
    }
    dump.finish();
  } catch (const std::exception& e) {
    std::cerr << "train_parity_dump: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
