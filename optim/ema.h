#pragma once
// An exponential moving average of weights: shadow = decay * shadow + (1 - decay) * param after
// each update(). Evaluate with the averaged weights by store(params); copy_to(params); ...;
// restore(params).
#include <vector>

#include "keel/core/tensor.h"

namespace keel::optim {

class EMA {
 public:
  // The shadow starts as a copy of the parameters.
  EMA(const std::vector<Tensor>& params, double decay);

  void update();                                        // from the parameters given at construction
  void copy_to(const std::vector<Tensor>& params) const;  // shadow -> params
  void store(const std::vector<Tensor>& params);         // keeps a copy of params for restore()
  void restore(const std::vector<Tensor>& params);       // copies the stored values back

  double decay() const { return decay_; }
  const std::vector<Tensor>& shadow() const { return shadow_; }

 private:
  void check_like(const std::vector<Tensor>& params, const std::vector<Tensor>& ours, const char* what) const;
  std::vector<Tensor> params_, shadow_, stored_;
  double decay_;
};

}  // namespace keel::optim
