#pragma once
// JSON helpers shared by the parity dumps (parity_dump.cpp, grad_parity_dump.cpp): strings,
// numbers (NaN / Infinity as Python's json reads them), shapes, scalars and the "args" objects;
// and F64Dump, the folder format of the nn and training dumps.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <keel/keel.h>

namespace keel::parity {

inline std::string json_string(const std::string& text) {
  std::ostringstream out;
  out << '"';
  for (char c : text) {
    if (c == '"' || c == '\\') out << '\\' << c;
    else if (static_cast<unsigned char>(c) < 0x20) out << "\\u" << std::hex << std::setw(4) << std::setfill('0') << int(c) << std::dec;
    else out << c;
  }
  out << '"';
  return out.str();
}

inline std::string json_number(double value) {
  if (std::isnan(value)) return "NaN";  // Python's json reads NaN / Infinity
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  std::ostringstream out;
  out << std::setprecision(17) << value;
  return out.str();
}

inline std::string json_list(const std::vector<int64_t>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + std::to_string(values[i]);
  return out + "]";
}

// {"kind": "int"|"float"|"bool", "value": v}: the script turns it into a Python number, so
// that PyTorch applies its scalar promotion rules exactly as Keel's Scalar should.
inline std::string json_scalar(const Scalar& s) {
  if (s.is_bool()) return std::string(R"({"kind": "bool", "value": )") + (s.to<bool>() ? "true" : "false") + "}";
  if (s.is_integral()) return R"({"kind": "int", "value": )" + std::to_string(s.to_int64()) + "}";
  return R"({"kind": "float", "value": )" + json_number(s.to_double()) + "}";
}

// Builds a JSON object from key / raw-JSON-value pairs.
class Args {
 public:
  Args& set(const std::string& key, const std::string& raw) {
    body_ += (body_.empty() ? "" : ", ") + json_string(key) + ": " + raw;
    return *this;
  }
  Args& set(const std::string& key, const char* text) { return set(key, json_string(text)); }
  Args& set(const std::string& key, int64_t value) { return set(key, std::to_string(value)); }
  Args& set(const std::string& key, int value) { return set(key, std::to_string(value)); }
  Args& set(const std::string& key, bool value) { return set(key, std::string(value ? "true" : "false")); }
  Args& set(const std::string& key, double value) { return set(key, json_number(value)); }
  Args& set(const std::string& key, const Scalar& value) { return set(key, json_scalar(value)); }
  Args& set(const std::string& key, const std::vector<int64_t>& value) { return set(key, json_list(value)); }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};


// A dump folder: every tensor's values as float64 appended to data.bin, referred to by
// {"offset": bytes, "shape": [...]}, and index.json holding named lists of JSON entries:
// {"cases": [...], "models": [...]} (the lists given to the constructor, in that order).
class F64Dump {
 public:
  F64Dump(const std::filesystem::path& dir, std::vector<std::string> list_names) : dir_(dir) {
    for (auto& name : list_names) lists_.emplace_back(std::move(name), std::vector<std::string>{});
    std::filesystem::create_directories(dir_);
    data_.open(dir_ / "data.bin", std::ios::binary | std::ios::trunc);
  }
  std::string tensor_entry(const Tensor& t) {
    const Tensor values = t.detach().to(DType::f64).contiguous();
    const std::string entry = "{\"offset\": " + std::to_string(offset_) + ", \"shape\": " + json_list(t.shape()) + "}";
    data_.write(reinterpret_cast<const char*>(values.data_ptr<double>()), static_cast<std::streamsize>(values.nbytes()));
    offset_ += values.nbytes();
    return entry;
  }
  void add(const std::string& list, std::string raw_entry) {
    for (auto& [name, entries] : lists_)
      if (name == list) {
        entries.push_back(std::move(raw_entry));
        return;
      }
    throw std::logic_error("F64Dump: no list " + list);
  }
  void finish() {
    data_.close();
    std::ofstream index(dir_ / "index.json", std::ios::trunc);
    index << "{";
    for (size_t l = 0; l < lists_.size(); ++l) {
      const auto& [name, entries] = lists_[l];
      index << (l ? "], " : "") << json_string(name) << ": [\n";
      for (size_t i = 0; i < entries.size(); ++i) index << entries[i] << (i + 1 < entries.size() ? ",\n" : "\n");
    }
    index << (lists_.empty() ? "}\n" : "]}\n");
  }

 private:
  std::filesystem::path dir_;
  std::ofstream data_;
  size_t offset_ = 0;
  std::vector<std::pair<std::string, std::vector<std::string>>> lists_;
};

}  // namespace keel::parity
