// Tensor printing, character for character what PyTorch's torch.Tensor.__repr__ prints with the
// default print options (torch/_tensor_str.py), so that outputs of both can be diffed:
//
//   tensor([[ 1.5000, -2.0000],          precision 4, one width for every element
//           [    nan,     inf]], dtype=torch.float64, device='cuda:0')
//
//   floats  all integer-valued -> "1." style; otherwise fixed "%.4f"; scientific "%.4e" when,
//           over the nonzero finite |x|, max / min > 1000 or max > 1e8 (or, for non-integer
//           values, min < 1e-4); nan / inf / -inf as such
//   ints    decimal; bools True / False
//   layout  numel > 1000 summarizes: 3 edge items and "..." per dimension longer than 6;
//           rows wrap at 80 columns; dims >= 2 separate slices by dim - 1 newlines
//   suffix  device (non-CPU), dtype (unless float32 / int64 / bool), size=(...) for empty
//           tensors that are not 1-D; a suffix that would pass column 80 goes on a new line
#include <cmath>
#include <cstring>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "keel/core/tensor.h"

namespace keel {
namespace {

constexpr int kPrecision = 4;
constexpr int64_t kThreshold = 1000;
constexpr int64_t kEdgeItems = 3;
constexpr int64_t kLineWidth = 80;

template <typename T> T load(const char* address) {
  T value;
  std::memcpy(&value, address, sizeof value);
  return value;
}

// A strided CPU view read element by element (no copy of CPU tensors).
struct HostView {
  const char* data;
  DType dtype;
  Shape shape;
  Shape strides;  // in elements
  size_t itemsize;

  double as_double(int64_t offset) const {
    const char* address = data + offset * static_cast<int64_t>(itemsize);
    switch (dtype) {
#define KEEL_PRINT_LOAD(name, type, str, category)                                          \
  case DType::name:                                                                         \
    if constexpr (std::is_same_v<type, ::keel::Half> || std::is_same_v<type, ::keel::BFloat16>) \
      return static_cast<double>(static_cast<float>(load<type>(address)));                  \
    else                                                                                    \
      return static_cast<double>(load<type>(address));
      KEEL_FORALL_DTYPES(KEEL_PRINT_LOAD)
#undef KEEL_PRINT_LOAD
    }
    return 0;
  }
  int64_t as_int(int64_t offset) const {
    const char* address = data + offset * static_cast<int64_t>(itemsize);
    switch (dtype) {
      case DType::i8: return load<int8_t>(address);
      case DType::u8: return load<uint8_t>(address);
      case DType::i32: return load<int32_t>(address);
      case DType::i64: return load<int64_t>(address);
      case DType::bool_: return load<bool>(address) ? 1 : 0;
      default: return static_cast<int64_t>(as_double(offset));
    }
  }

  // Calls f(offset) for every element shown: all of them, or the edge items when summarizing.
  template <typename F> void for_each_shown(size_t dim, int64_t offset, bool summarize, F&& f) const {
    if (dim == shape.size()) {
      f(offset);
      return;
    }
    const int64_t size = shape[dim];
    const bool cut = summarize && size > 2 * kEdgeItems;
    for (int64_t i = 0; i < size; ++i) {
      if (cut && i == kEdgeItems) i = size - kEdgeItems;
      for_each_shown(dim + 1, offset + i * strides[dim], summarize, f);
    }
  }
};

// torch._tensor_str._Formatter: picks the notation and the common width of the elements.
class Formatter {
 public:
  Formatter(const HostView& view, bool summarize) : view_(view) {
    floating_ = is_floating(view.dtype);
    if (!floating_) {
      view.for_each_shown(0, 0, summarize, [&](int64_t offset) {
        max_width_ = std::max<int64_t>(max_width_, static_cast<int64_t>(integer_string(offset).size()));
      });
      return;
    }
    std::vector<double> nonzero_finite;
    view.for_each_shown(0, 0, summarize, [&](int64_t offset) {
      const double value = view.as_double(offset);
      if (std::isfinite(value) && value != 0.0) nonzero_finite.push_back(value);
    });
    if (nonzero_finite.empty()) return;
    double max_abs = 0.0, min_abs = INFINITY;
    for (double value : nonzero_finite) {
      max_abs = std::max(max_abs, std::fabs(value));
      min_abs = std::min(min_abs, std::fabs(value));
      if (value != std::ceil(value)) int_mode_ = false;
    }
    const bool wide_range = max_abs / min_abs > 1000.0 || max_abs > 1.0e8;
    sci_mode_ = int_mode_ ? wide_range : wide_range || min_abs < 1.0e-4;
    for (double value : nonzero_finite) {
      int64_t length;
      if (sci_mode_) length = static_cast<int64_t>(fmt::format("{:.{}e}", value, kPrecision).size());
      else if (int_mode_) length = static_cast<int64_t>(fmt::format("{:.0f}", value).size()) + 1;
      else length = static_cast<int64_t>(fmt::format("{:.{}f}", value, kPrecision).size());
      max_width_ = std::max(max_width_, length);
    }
  }

  int64_t width() const { return max_width_; }

  std::string format(int64_t offset) const {
    std::string text;
    if (!floating_) {
      text = integer_string(offset);
    } else {
      const double value = view_.as_double(offset);
      if (std::isnan(value)) {
        text = "nan";  // Python prints every NaN without a sign
      } else if (std::isinf(value)) {
        text = value > 0 ? "inf" : "-inf";
      } else if (sci_mode_) {
        text = fmt::format("{:.{}e}", value, kPrecision);
      } else if (int_mode_) {
        text = fmt::format("{:.0f}.", value);
      } else {
        text = fmt::format("{:.{}f}", value, kPrecision);
      }
    }
    const int64_t length = static_cast<int64_t>(text.size());
    return length < max_width_ ? std::string(static_cast<size_t>(max_width_ - length), ' ') + text : text;
  }

 private:
  std::string integer_string(int64_t offset) const {
    if (view_.dtype == DType::bool_) return view_.as_int(offset) ? "True" : "False";
    return std::to_string(view_.as_int(offset));
  }

  const HostView& view_;
  bool floating_ = false;
  bool int_mode_ = true;
  bool sci_mode_ = false;
  int64_t max_width_ = 1;
};

// _vector_str and _tensor_str_with_formatter.
std::string tensor_body(const HostView& view, const Formatter& formatter, size_t dim, int64_t offset,
                        int64_t indent, bool summarize) {
  const size_t ndim = view.shape.size();
  if (ndim == 0) return formatter.format(offset);
  const int64_t size = view.shape[dim];
  const int64_t stride = view.strides[dim];
  const bool cut = summarize && size > 2 * kEdgeItems;
  std::vector<std::string> items;
  if (dim + 1 == ndim) {
    for (int64_t i = 0; i < size; ++i) {
      if (cut && i == kEdgeItems) {
        items.push_back(" ...");
        i = size - kEdgeItems;
      }
      items.push_back(formatter.format(offset + i * stride));
    }
    const int64_t element_length = formatter.width() + 2;
    // Python's floor division of a possibly negative numerator, clamped to at least one.
    const int64_t room = kLineWidth - indent;
    const int64_t floor_div = room >= 0 ? room / element_length : -((-room + element_length - 1) / element_length);
    const int64_t per_line = std::max<int64_t>(1, floor_div);
    std::string text = "[";
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) {
        text += i % static_cast<size_t>(per_line) == 0 ? ",\n" + std::string(static_cast<size_t>(indent + 1), ' ')
                                                         : std::string(", ");
      }
      text += items[i];
    }
    return text + "]";
  }
  for (int64_t i = 0; i < size; ++i) {
    if (cut && i == kEdgeItems) {
      items.push_back("...");
      i = size - kEdgeItems;
    }
    items.push_back(tensor_body(view, formatter, dim + 1, offset + i * stride, indent + 1, summarize));
  }
  const std::string separator =
      "," + std::string(ndim - dim - 1, '\n') + std::string(static_cast<size_t>(indent + 1), ' ');
  std::string text = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text += separator;
    text += items[i];
  }
  return text + "]";
}

// Python's repr of a shape tuple: (0,), (2, 0).
std::string tuple_string(const Shape& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  const std::string prefix = "tensor(";
  const int64_t indent = static_cast<int64_t>(prefix.size());
  std::vector<std::string> suffixes;
  if (!is_cpu()) suffixes.push_back("device='" + device().str() + "'");
  const bool default_dtype = dtype() == DType::f32 || dtype() == DType::i64 || dtype() == DType::bool_;

  std::string body;
  if (numel() == 0) {
    if (dim() != 1) suffixes.push_back("size=" + tuple_string(shape()));
    if (dtype() != DType::f32) suffixes.push_back(fmt::format("dtype=torch.{}", dtype_name(dtype())));
    body = "[]";
  } else {
    if (!default_dtype) suffixes.push_back(fmt::format("dtype=torch.{}", dtype_name(dtype())));
    const Tensor host = is_cpu() ? *this : cpu();
    const HostView view{static_cast<const char*>(host.raw_data()), host.dtype(), host.shape(), host.strides(),
                        host.itemsize()};
    const bool summarize = numel() > kThreshold;
    const Formatter formatter(view, summarize);
    body = tensor_body(view, formatter, 0, 0, indent, summarize);
  }

  // _add_suffixes: a suffix that would pass the line width starts a new, indented line.
  std::string text = prefix + body;
  const size_t newline = text.rfind('\n');
  int64_t last_line_length = static_cast<int64_t>(text.size()) -
                             (newline == std::string::npos ? -1 : static_cast<int64_t>(newline)) + 1;
  for (const std::string& suffix : suffixes) {
    const int64_t length = static_cast<int64_t>(suffix.size());
    if (last_line_length + length + 2 > kLineWidth) {
      text += ",\n" + std::string(static_cast<size_t>(indent), ' ') + suffix;
      last_line_length = indent + length;
    } else {
      text += ", " + suffix;
      last_line_length += length + 2;
    }
  }
  return text + ")";
}

std::ostream& operator<<(std::ostream& stream, const Tensor& tensor) { return stream << tensor.str(); }

}  // namespace keel
