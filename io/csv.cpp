// CSV reader (see csv.h): one pass splits records into fields (a small state machine over
// unquoted / quoted / after-closing-quote), keeping only the selected columns; a second pass per
// column decides its type and converts it.
#include "keel/io/csv.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>

#include "keel/core/error.h"

namespace keel::data {
namespace {

struct Field {
  std::string text;
  bool quoted = false;
};

// Splits `text` into records. Each record keeps the line on which it starts.
class Splitter {
 public:
  Splitter(const std::string& text, const std::string& context, const CsvOptions& options)
      : text_(text), context_(context), options_(options) {}

  // The next non-blank record; false at the end.
  bool next(std::vector<Field>& fields, int64_t& line) {
    for (;;) {
      if (position_ >= text_.size()) return false;
      fields.clear();
      line = line_;
      if (read_record(fields)) return true;
    }
  }

 private:
  // Returns false for a blank line.
  bool read_record(std::vector<Field>& fields) {
    const char delimiter = options_.delimiter, quote = options_.quote;
    Field field;
    bool any = false;
    const int64_t start_line = line_;
    for (;;) {
      if (position_ >= text_.size()) {  // end of text ends the record
        if (any || !field.text.empty() || field.quoted) fields.push_back(std::move(field));
        return !fields.empty();
      }
      char c = text_[position_];
      if (c == quote && field.text.empty() && !field.quoted) {
        field.quoted = true;
        any = true;
        const int64_t quote_line = line_;
        const size_t quote_column = fields.size() + 1;
        ++position_;
        for (;;) {
          KEEL_CHECK(position_ < text_.size(), context_, ":", quote_line, ": column ", quote_column,
                     ": the quoted field never ends (a ", quote, " is missing)");
          c = text_[position_++];
          if (c == quote) {
            if (position_ < text_.size() && text_[position_] == quote) {
              field.text.push_back(quote);
              ++position_;
            } else {
              break;
            }
          } else {
            if (c == '\n') ++line_;
            field.text.push_back(c);
          }
        }
        // After the closing quote: a delimiter, a line end or the end of the text.
        if (position_ < text_.size()) {
          const char after = text_[position_];
          const bool ok = after == delimiter || after == '\n' ||
                          (after == '\r' && position_ + 1 < text_.size() && text_[position_ + 1] == '\n') ||
                          (after == '\r' && position_ + 1 == text_.size());
          KEEL_CHECK(ok, context_, ":", line_, ": column ", fields.size() + 1, ": unexpected '", after,
                     "' after a closing quote (a quote inside a quoted field is written twice: \"\")");
        }
        continue;
      }
      ++position_;
      if (c == delimiter) {
        // Bounded while splitting: one line of a million commas must not become a million fields.
        KEEL_CHECK(static_cast<int64_t>(fields.size()) < options_.max_columns, context_, ":", start_line,
                   ": more than CsvOptions::max_columns (", options_.max_columns, ") fields in one record");
        fields.push_back(std::move(field));
        field = Field();
        any = true;
      } else if (c == '\n' || c == '\r') {
        if (c == '\r' && position_ < text_.size() && text_[position_] == '\n') ++position_;
        ++line_;
        if (!any && field.text.empty()) return false;  // blank line
        fields.push_back(std::move(field));
        return true;
      } else {
        KEEL_CHECK(c != quote, context_, ":", start_line, ": column ", fields.size() + 1,
                   ": a quote inside an unquoted field (quote the whole field and write the quote twice)");
        field.text.push_back(c);
        any = true;
      }
    }
  }

  const std::string& text_;
  const std::string& context_;
  const CsvOptions& options_;
  size_t position_ = 0;
  int64_t line_ = 1;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool parse_int(std::string_view s, int64_t& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), out);
  return error == std::errc() && end == s.data() + s.size();
}

bool parse_double(std::string_view s, double& out) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), out);
  // Out of range: from_chars leaves `out` unchanged; a literal beyond the dtype is an overflow.
  if (error == std::errc::result_out_of_range && end == s.data() + s.size()) {
    out = (s.front() == '-') ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    return true;
  }
  return error == std::errc() && end == s.data() + s.size();
}

struct RawColumn {
  std::string name;
  std::vector<std::string> fields;
  std::vector<int64_t> lines;  // the line of each field's record, for messages
  int64_t file_column = 0;     // 1-based
};

template <typename T> Tensor to_tensor(const std::vector<T>& values, DType dtype) {
  Tensor out = empty({static_cast<int64_t>(values.size())}, {.dtype = dtype});
  T* data = out.data_ptr<T>();
  for (size_t i = 0; i < values.size(); ++i) data[i] = values[i];
  return out;
}

Tensor floats(const std::vector<double>& values, DType dtype) {
  Tensor wide = to_tensor(values, DType::f64);
  return dtype == DType::f64 ? wide : wide.to(dtype);
}

CsvColumn convert(RawColumn& raw, const std::string& context, const CsvOptions& options) {
  CsvColumn column;
  column.name = raw.name;
  const size_t rows = raw.fields.size();
  const auto forced = options.dtypes.find(raw.name);
  auto where = [&](size_t row) {
    return context + ":" + std::to_string(raw.lines[row]) + ": column " + std::to_string(raw.file_column) +
           " (" + raw.name + ")";
  };
  if (forced != options.dtypes.end()) {
    const DType dtype = forced->second;
    if (is_integral(dtype) || dtype == DType::bool_) {
      std::vector<int64_t> values(rows);
      for (size_t r = 0; r < rows; ++r)
        KEEL_CHECK(parse_int(raw.fields[r], values[r]), where(r), ": '", raw.fields[r],
                   "' is not an integer (the column is read as ", dtype_name(dtype), ")");
      column.values = to_tensor(values, DType::i64).to(dtype);
    } else {
      std::vector<double> values(rows);
      for (size_t r = 0; r < rows; ++r) {
        if (trim(raw.fields[r]).empty()) {
          values[r] = std::numeric_limits<double>::quiet_NaN();
          continue;
        }
        KEEL_CHECK(parse_double(raw.fields[r], values[r]), where(r), ": '", raw.fields[r],
                   "' is not a number (the column is read as ", dtype_name(dtype), ")");
      }
      column.values = floats(values, dtype);
    }
    return column;
  }
  // Automatic: integers, then numbers (empty fields as NaN), then strings.
  bool all_int = rows > 0, any_value = false;
  std::vector<int64_t> ints(rows);
  for (size_t r = 0; r < rows && all_int; ++r) all_int = parse_int(raw.fields[r], ints[r]);
  if (all_int && options.integers_as_i64) {
    column.values = to_tensor(ints, DType::i64);
    return column;
  }
  bool all_number = rows > 0;
  std::vector<double> values(rows);
  for (size_t r = 0; r < rows && all_number; ++r) {
    if (trim(raw.fields[r]).empty()) {
      values[r] = std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    all_number = parse_double(raw.fields[r], values[r]);
    any_value = true;
  }
  if (all_number && any_value) {
    column.values = floats(values, options.float_dtype);
    return column;
  }
  column.strings = std::move(raw.fields);
  return column;
}

}  // namespace

const CsvColumn& CsvTable::operator[](const std::string& name) const {
  for (const CsvColumn& column : columns)
    if (column.name == name) return column;
  std::string known;
  for (const CsvColumn& column : columns) known += (known.empty() ? "" : ", ") + column.name;
  fail("[CsvTable] no column named '", name, "' (columns: ", known, ")");
}

bool CsvTable::has(const std::string& name) const {
  for (const CsvColumn& column : columns)
    if (column.name == name) return true;
  return false;
}

std::vector<std::string> CsvTable::names() const {
  std::vector<std::string> out;
  for (const CsvColumn& column : columns) out.push_back(column.name);
  return out;
}

CsvTable parse_csv(const std::string& text, const std::string& name, const CsvOptions& options) {
  const std::string context = "[read_csv] " + name;
  KEEL_CHECK(options.delimiter != options.quote && options.delimiter != '\n' && options.delimiter != '\r',
             context, ": the delimiter must differ from the quote and from line ends");
  KEEL_CHECK(options.columns.empty() || options.column_indices.empty(), context,
             ": give CsvOptions::columns or column_indices, not both");
  KEEL_CHECK(options.columns.empty() || options.header, context,
             ": CsvOptions::columns selects by name and needs header = true (or use column_indices)");
  KEEL_CHECK(text.size() <= options.max_bytes, context, ": ", text.size(),
             " bytes is over CsvOptions::max_bytes (", options.max_bytes, ")");

  Splitter splitter(text, context, options);
  std::vector<Field> fields;
  int64_t line = 0;
  const bool any_record = splitter.next(fields, line);
  KEEL_CHECK(any_record || !options.header, context, ": the file is empty (expected a header row)");
  if (!any_record) return {};
  const size_t width = fields.size();
  KEEL_CHECK(static_cast<int64_t>(width) <= options.max_columns, context, ":", line, ": ", width,
             " columns is over CsvOptions::max_columns (", options.max_columns, ")");

  std::vector<std::string> names(width);
  for (size_t c = 0; c < width; ++c) names[c] = options.header ? fields[c].text : std::to_string(c);
  if (options.header) {
    for (size_t c = 0; c < width; ++c)
      for (size_t d = 0; d < c; ++d)
        KEEL_CHECK(names[c] != names[d], context, ":", line, ": columns ", d + 1, " and ", c + 1,
                   " are both named '", names[c], "'");
  }
  // The columns kept, as positions in each record.
  std::vector<size_t> keep;
  if (!options.columns.empty()) {
    for (const std::string& wanted : options.columns) {
      size_t found = width;
      for (size_t c = 0; c < width; ++c)
        if (names[c] == wanted) found = c;
      KEEL_CHECK(found < width, context, ": no column named '", wanted, "' in the header");
      keep.push_back(found);
    }
  } else if (!options.column_indices.empty()) {
    for (int64_t index : options.column_indices) {
      KEEL_CHECK(index >= 0 && static_cast<size_t>(index) < width, context, ": column index ", index,
                 " is outside the ", width, " columns");
      keep.push_back(static_cast<size_t>(index));
    }
  } else {
    for (size_t c = 0; c < width; ++c) keep.push_back(c);
  }
  for (const auto& [forced, dtype] : options.dtypes) {
    bool kept = false;
    for (size_t c : keep) kept = kept || names[c] == forced;
    KEEL_CHECK(kept, context, ": CsvOptions::dtypes names '", forced, "', which is not a column read");
  }

  std::vector<RawColumn> raw(keep.size());
  for (size_t k = 0; k < keep.size(); ++k) {
    raw[k].name = names[keep[k]];
    raw[k].file_column = static_cast<int64_t>(keep[k]) + 1;
  }
  int64_t rows = 0;
  auto add_record = [&](std::vector<Field>& record, int64_t record_line) {
    KEEL_CHECK(record.size() == width, context, ":", record_line, ": ", record.size(), " fields, expected ",
               width, " (as in the ", options.header ? "header" : "first row", ")");
    KEEL_CHECK(static_cast<int64_t>(keep.size()) * (rows + 1) <= options.max_fields, context, ":", record_line,
               ": more than CsvOptions::max_fields (", options.max_fields, ") fields");
    for (size_t k = 0; k < keep.size(); ++k) {
      raw[k].fields.push_back(std::move(record[keep[k]].text));
      raw[k].lines.push_back(record_line);
    }
    ++rows;
  };
  if (!options.header) add_record(fields, line);
  while (splitter.next(fields, line)) add_record(fields, line);

  CsvTable table;
  table.rows = rows;
  for (RawColumn& column : raw) table.columns.push_back(convert(column, context, options));
  return table;
}

CsvTable read_csv(const std::string& path, const CsvOptions& options) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  KEEL_CHECK(file.is_open(), "[read_csv] ", path, ": cannot open the file");
  const std::streamoff size = file.tellg();
  KEEL_CHECK(size >= 0, "[read_csv] ", path, ": cannot determine the file's size");
  KEEL_CHECK(static_cast<uint64_t>(size) <= options.max_bytes, "[read_csv] ", path, ": ", size,
             " bytes is over CsvOptions::max_bytes (", options.max_bytes, ")");
  std::string text(static_cast<size_t>(size), '\0');
  file.seekg(0);
  file.read(text.data(), size);
  KEEL_CHECK(file.gcount() == size, "[read_csv] ", path, ": read error");
  return parse_csv(text, path, options);
}

}  // namespace keel::data
