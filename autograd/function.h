#pragma once
// Custom differentiable functions written by the user, like torch::autograd::Function:
//
//   struct ScaledExp : autograd::Function<ScaledExp> {
//     static constexpr const char* name = "scaled_exp";            // optional, names the node
//     static Tensor forward(autograd::FunctionContext& ctx, const Tensor& x, double scale) {
//       Tensor y = exp(x) * scale;                                 // runs with grad mode off
//       ctx.save_for_backward({y});
//       return y;
//     }
//     static autograd::TensorList backward(autograd::FunctionContext& ctx, const autograd::TensorList& grads) {
//       return {grads[0] * ctx.saved()[0]};                       // one gradient per tensor argument
//     }
//   };
//   Tensor y = ScaledExp::apply(x, 2.0);
//
// Every Tensor argument of forward is an input (in order); backward returns one gradient per
// Tensor argument (undefined for none). Non-tensor arguments are passed through.
#include <any>
#include <map>
#include <string>
#include <type_traits>

#include "keel/autograd/record.h"

namespace keel::autograd {

class FunctionContext {
 public:
  // Tensors backward needs: version-checked like the built-in ops' saved tensors.
  void save_for_backward(TensorList tensors) { to_save_ = std::move(tensors); }
  // In backward: the saved tensors.
  const TensorList& saved() const { return saved_; }
  // In backward: whether input i (the i-th Tensor argument) needs a gradient.
  bool needs_input_grad(size_t i) const { return i < needs_.size() && needs_[i]; }
  // Anything else backward needs (shapes, scalars, ...).
  std::map<std::string, std::any> saved_data;

 private:
  template <class> friend struct Function;
  TensorList to_save_;
  TensorList saved_;
  std::vector<bool> needs_;
};

template <class Derived>
struct Function {
  template <class... Args>
  static auto apply(const Args&... args) {
    TensorList inputs;
    (collect(inputs, args), ...);
    auto context = std::make_shared<FunctionContext>();
    OpRecord record(node_name(), inputs);
    auto result = Derived::forward(*context, args...);
    if (record) {
      // An output that is one of the inputs becomes a new handle: the input keeps its own history.
      auto fresh = [&inputs](Tensor& output) {
        for (const Tensor& input : inputs)
          if (output.defined() && output.is_same(input)) output = output.alias();
      };
      TensorList outputs;
      if constexpr (std::is_same_v<decltype(result), Tensor>) {
        fresh(result);
        outputs = {result};
      } else {
        for (Tensor& output : result) fresh(output);
        outputs = result;
      }
      // The context must not own the outputs (they own the node that owns the context).
      TensorList to_save = std::move(context->to_save_);
      context->to_save_.clear();
      record.finish(outputs, to_save, [context](const VjpArgs& args) {
        context->saved_ = args.saved;
        context->needs_.assign(args.edges.size(), false);
        for (size_t i = 0; i < args.edges.size(); ++i) context->needs_[i] = args.needs(i);
        TensorList grads = Derived::backward(*context, args.grads);
        context->saved_.clear();
        KEEL_CHECK(grads.size() == args.edges.size(), "[", node_name(), "] backward returned ", grads.size(),
                   " gradients for ", args.edges.size(), " tensor inputs");
        return grads;
      });
    }
    return result;
  }

 private:
  static const char* node_name() {
    if constexpr (requires { Derived::name; }) return Derived::name;
    else return "custom_function";
  }
  static void collect(TensorList& inputs, const Tensor& t) { inputs.push_back(t); }
  template <class T> static void collect(TensorList&, const T&) {}
};

}  // namespace keel::autograd
