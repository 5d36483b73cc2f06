#pragma once
// Stochastic gradient descent with momentum, as torch.optim.SGD (1.13, its single-tensor formula):
//   g = maximize ? -grad : grad
//   g = g + weight_decay * param                              (if weight_decay != 0)
//   buf = g on the first update, else momentum * buf + (1 - dampening) * g   (if momentum != 0)
//   g = nesterov ? g + momentum * buf : buf
//   param = param - lr * g
#include "keel/optim/optimizer.h"

namespace keel::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  bool maximize = false;
};

class SGD : public OptimizerWithOptions<SGDOptions> {
 public:
  using Options = SGDOptions;
  explicit SGD(const std::vector<Tensor>& params, const SGDOptions& options = {});
  explicit SGD(const std::vector<ParamGroup<SGDOptions>>& groups);

  void step() override;
  std::optional<double> momentum(size_t group) const override { return options(group).momentum; }
  void set_momentum(double momentum, size_t group) override;

 protected:
  void validate(const SGDOptions& options) const override;
  std::vector<OptionField<SGDOptions>> option_fields() const override {
    return {{"momentum", &SGDOptions::momentum}, {"dampening", &SGDOptions::dampening},
            {"weight_decay", &SGDOptions::weight_decay}, {"nesterov", nullptr, &SGDOptions::nesterov},
            {"maximize", nullptr, &SGDOptions::maximize}};
  }
  std::vector<std::string> state_names(size_t group) const override;
};

}  // namespace keel::optim
