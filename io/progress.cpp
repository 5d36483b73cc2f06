#include "keel/io/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

namespace keel::io {

ProgressBar::ProgressBar(std::string label, int64_t total, std::ostream& out, ProgressOptions options)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 0)), out_(out), options_(std::move(options)) {
  switch (options_.mode) {
    case ProgressOptions::Mode::terminal: terminal_ = true; break;
    case ProgressOptions::Mode::lines: terminal_ = false; break;
    default:
      terminal_ = (&out_ == &std::cerr && ::isatty(2)) || (&out_ == &std::cout && ::isatty(1));
  }
  start_ = std::chrono::steady_clock::now();
}

double ProgressBar::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string ProgressBar::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t total = std::llround(seconds);
  const int64_t hours = total / 3600, minutes = total / 60 % 60, secs = total % 60;
  char text[32];
  if (hours > 0) std::snprintf(text, sizeof(text), "%lld:%02lld:%02lld", static_cast<long long>(hours),
                               static_cast<long long>(minutes), static_cast<long long>(secs));
  else std::snprintf(text, sizeof(text), "%lld:%02lld", static_cast<long long>(minutes), static_cast<long long>(secs));
  return text;
}

std::string ProgressBar::render(int64_t done, const Fields& fields) const {
  std::string line = label_ + " [";
  const int64_t filled = total_ > 0 ? done * options_.width / total_ : options_.width;
  for (int64_t i = 0; i < options_.width; ++i) line += i < filled ? '=' : (i == filled ? '>' : ' ');
  line += "] " + std::to_string(done) + "/" + std::to_string(total_);
  for (const auto& [name, value] : fields) line += "  " + name + " " + value;
  // The rate and times stop at the last update: what follows it (a validation pass before
  // finish) is not the loop's work.
  const double seconds = last_update_;
  if (seconds > 0 && items_ > 0) {
    char rate[48];
    std::snprintf(rate, sizeof(rate), "  %.0f %s/s", static_cast<double>(items_) / seconds, options_.rate_unit.c_str());
    line += rate;
  }
  if (done < total_ && done > 0) line += "  ETA " + format_duration(seconds * static_cast<double>(total_ - done) / static_cast<double>(done));
  else line += "  " + format_duration(seconds);
  return line;
}

void ProgressBar::update(int64_t done, int64_t items, const Fields& fields) {
  done_ = std::clamp<int64_t>(done, 0, total_);
  items_ = items;
  const double now = elapsed();
  last_update_ = now;
  if (terminal_) {
    if (done_ < total_ && last_draw_ >= 0 && now - last_draw_ < options_.redraw_seconds) return;
    last_draw_ = now;
    // \r, the line, then clear to the end of the line (a shorter line leaves no tail behind).
    out_ << '\r' << render(done_, fields) << "\x1b[K" << std::flush;
  } else {
    const int64_t tenth = total_ > 0 ? done_ * 10 / total_ : 10;
    if (tenth == last_tenth_) return;
    last_tenth_ = tenth;
    out_ << render(done_, fields) << '\n' << std::flush;
  }
}

void ProgressBar::finish(const Fields& fields) {
  if (finished_) return;
  finished_ = true;
  if (terminal_) {
    out_ << '\r' << render(done_, fields) << "\x1b[K\n" << std::flush;
  } else if (last_tenth_ != 10 || !fields.empty()) {
    out_ << render(done_, fields) << '\n' << std::flush;
  }
}

}  // namespace keel::io
