#include "keel/io/json.h"

#include <charconv>
#include <cstdio>

#include "keel/core/error.h"

namespace keel::io {

JsonValue::JsonValue() = default;
JsonValue::JsonValue(const JsonValue&) = default;
JsonValue::JsonValue(JsonValue&&) noexcept = default;
JsonValue& JsonValue::operator=(const JsonValue&) = default;
JsonValue& JsonValue::operator=(JsonValue&&) noexcept = default;
JsonValue::~JsonValue() = default;

const JsonValue* JsonValue::find(std::string_view key) const {
  for (const auto& [name, value] : object)
    if (name == key) return &value;
  return nullptr;
}

namespace {

class Parser {
 public:
  Parser(std::string_view text, const std::string& tag, int max_depth)
      : text_(text), tag_(tag), max_depth_(max_depth) {}

  JsonValue parse_document() {
    JsonValue value = parse_value(0);
    skip_spaces();
    if (at_ < text_.size()) fail_here("unexpected text after the JSON value");
    return value;
  }

 private:
  [[noreturn]] void fail_here(const std::string& what) const {
    fail(tag_, ": invalid JSON at byte ", at_, ": ", what);
  }
  void skip_spaces() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r'))
      ++at_;
  }
  char peek() {
    skip_spaces();
    if (at_ >= text_.size()) fail_here("unexpected end of text");
    return text_[at_];
  }
  void expect(char c) {
    if (peek() != c) fail_here(std::string("expected '") + c + "'");
    ++at_;
  }
  bool consume_word(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }

  JsonValue parse_value(int depth) {
    if (depth > max_depth_) fail_here("nested deeper than " + std::to_string(max_depth_) + " levels");
    JsonValue value;
    const char c = peek();
    if (c == '{') {
      value.kind = JsonValue::Kind::object;
      ++at_;
      if (peek() == '}') {
        ++at_;
        return value;
      }
      while (true) {
        if (peek() != '"') fail_here("expected a string key");
        std::string key = parse_string();
        if (value.find(key) != nullptr) fail_here("duplicate key \"" + key + "\"");
        expect(':');
        value.object.emplace_back(std::move(key), parse_value(depth + 1));
        if (peek() == ',') {
          ++at_;
          continue;
        }
        expect('}');
        return value;
      }
    }
    if (c == '[') {
      value.kind = JsonValue::Kind::array;
      ++at_;
      if (peek() == ']') {
        ++at_;
        return value;
      }
      while (true) {
        value.array.push_back(parse_value(depth + 1));
        if (peek() == ',') {
          ++at_;
          continue;
        }
        expect(']');
        return value;
      }
    }
    if (c == '"') {
      value.kind = JsonValue::Kind::string;
      value.string = parse_string();
      return value;
    }
    if (consume_word("true") || consume_word("false")) {
      value.kind = JsonValue::Kind::boolean;
      value.boolean = c == 't';
      return value;
    }
    if (consume_word("null")) return value;
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    fail_here(std::string("unexpected character '") + c + "'");
  }

  JsonValue parse_number() {
    const size_t start = at_;
    if (text_[at_] == '-') ++at_;
    auto digits = [&] {
      const size_t first = at_;
      while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
      if (at_ == first) fail_here("expected a digit");
    };
    if (at_ < text_.size() && text_[at_] == '0') ++at_;  // JSON: no leading zeros
    else digits();
    bool integral = true;
    if (at_ < text_.size() && text_[at_] == '.') {
      ++at_;
      digits();
      integral = false;
    }
    if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      ++at_;
      if (at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
      digits();
      integral = false;
    }
    JsonValue value;
    value.kind = JsonValue::Kind::number;
    const char* first = text_.data() + start;
    const char* last = text_.data() + at_;
    if (integral) {
      const auto [end, error] = std::from_chars(first, last, value.integer);
      value.is_integer = error == std::errc() && end == last;
    }
    const auto [end, error] = std::from_chars(first, last, value.number);
    if (error == std::errc::invalid_argument || end != last) fail_here("malformed number");
    if (value.is_integer) value.number = static_cast<double>(value.integer);
    return value;
  }

  static void append_utf8(std::string& out, uint32_t code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  uint32_t parse_hex4() {
    if (at_ + 4 > text_.size()) fail_here("truncated \\u escape");
    uint32_t code = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = text_[at_++];
      code <<= 4;
      if (h >= '0' && h <= '9') code |= h - '0';
      else if (h >= 'a' && h <= 'f') code |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') code |= h - 'A' + 10;
      else fail_here("bad hex digit in \\u escape");
    }
    return code;
  }

  std::string parse_string() {
    ++at_;  // the opening quote
    std::string out;
    while (true) {
      if (at_ >= text_.size()) fail_here("unterminated string");
      const char c = text_[at_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail_here("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= text_.size()) fail_here("unterminated escape");
      const char e = text_[at_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t code = parse_hex4();
          if (code >= 0xD800 && code < 0xDC00) {  // a surrogate pair
            if (!consume_word("\\u")) fail_here("unpaired surrogate in \\u escape");
            const uint32_t low = parse_hex4();
            if (low < 0xDC00 || low >= 0xE000) fail_here("unpaired surrogate in \\u escape");
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          } else if (code >= 0xDC00 && code < 0xE000) {
            fail_here("unpaired surrogate in \\u escape");
          }
          append_utf8(out, code);
          break;
        }
        default: fail_here(std::string("unknown escape \\") + e);
      }
    }
  }

  std::string_view text_;
  const std::string& tag_;
  int max_depth_;
  size_t at_ = 0;
};

}  // namespace

JsonValue parse_json(std::string_view text, const std::string& tag, int max_depth) {
  return Parser(text, tag, max_depth).parse_document();
}

std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escape[8];
          std::snprintf(escape, sizeof(escape), "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += escape;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace keel::io
