// Progress bar drawing: redrawn at most 10 times a second, ETA from the average rate so far.
#include "progress.h"

#include <unistd.h>

#include <fmt/format.h>

namespace qforge::cli {

bool StderrIsTerminal() { return ::isatty(2) != 0; }

ProgressBar::ProgressBar(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), start_(std::chrono::steady_clock::now()) {}

void ProgressBar::Update(uint64_t done, const std::string& note) {
  if (!enabled_ || total_ == 0) return;
  auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double frac = static_cast<double>(done) / static_cast<double>(total_);
  const int width = 30;
  const int filled = static_cast<int>(frac * width);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(width, '.');
  std::string eta = "--";
  if (done > 0 && done < total_) eta = fmt::format("{:.0f}s", elapsed / frac - elapsed);
  if (done >= total_) eta = fmt::format("done in {:.1f}s", elapsed);
  std::string shown = note.size() > 32 ? note.substr(0, 29) + "..." : note;
  fmt::print(stderr, "\r{} [{}] {:>3.0f}% {}/{} ETA {} {:<32}", label_, bar, frac * 100, done, total_, eta, shown);
  std::fflush(stderr);
}

void ProgressBar::Finish() {
  if (!enabled_ || total_ == 0) return;
  Update(total_);
  fmt::print(stderr, "\n");
}

}  // namespace qforge::cli
