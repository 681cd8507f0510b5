// Progress drawing. ETA comes from the average rate so far (units are bytes for quantize, so large
// tensors weigh what they cost).
#include "progress.h"

#include <unistd.h>

#include <fmt/format.h>

namespace qforge::cli {

bool StderrIsTerminal() { return ::isatty(2) != 0; }

ProgressMode DefaultProgressMode(bool force_bar, bool quiet) {
  if (quiet) return ProgressMode::kOff;
  if (force_bar || StderrIsTerminal()) return ProgressMode::kBar;
  return ProgressMode::kLines;
}

ProgressBar::ProgressBar(std::string label, uint64_t total, ProgressMode mode, std::string unit)
    : label_(std::move(label)),
      total_(total),
      mode_(mode),
      unit_(std::move(unit)),
      start_(std::chrono::steady_clock::now()) {}

std::string ProgressBar::Rate(double elapsed, uint64_t done) const {
  if (unit_.empty() || elapsed <= 0) return {};
  const double per_second = static_cast<double>(done) / elapsed;
  if (unit_ == "B") return fmt::format(" {:.1f} MB/s", per_second / 1e6);
  return fmt::format(" {:.1f} {}/s", per_second, unit_);
}

void ProgressBar::Update(uint64_t done, const std::string& note) {
  if (mode_ == ProgressMode::kOff || total_ == 0 || drew_final_) return;
  last_done_ = done;
  last_note_ = note;
  auto now = std::chrono::steady_clock::now();
  const auto min_gap = mode_ == ProgressMode::kBar ? std::chrono::milliseconds(100) : std::chrono::milliseconds(1000);
  if (done < total_ && now - last_draw_ < min_gap) return;
  Draw(now);
}

void ProgressBar::Draw(std::chrono::steady_clock::time_point now) {
  const uint64_t done = last_done_;
  const std::string& note = last_note_;
  const bool final = done >= total_;
  last_draw_ = now;
  drew_final_ = final;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double frac = static_cast<double>(std::min(done, total_)) / static_cast<double>(total_);
  std::string eta = "ETA --";
  if (done > 0 && !final) eta = fmt::format("ETA {:.0f}s", elapsed / frac - elapsed);
  if (final) eta = fmt::format("done in {:.1f}s", elapsed);
  const std::string rate = Rate(elapsed, done);
  if (mode_ == ProgressMode::kLines) {
    fmt::print(stderr, "{}: {:>3.0f}%{} {} {}\n", label_, frac * 100, rate, eta, note);
    return;
  }
  const int width = 30;
  std::string bar(static_cast<size_t>(frac * width), '#');
  bar.resize(width, '.');
  std::string shown = note.size() > 32 ? note.substr(0, 29) + "..." : note;
  fmt::print(stderr, "\r{} [{}] {:>3.0f}%{} {} {:<32}", label_, bar, frac * 100, rate, eta, shown);
  std::fflush(stderr);
}

void ProgressBar::Finish() {
  if (mode_ == ProgressMode::kOff || total_ == 0) return;
  // The last update may have been throttled: show it. An interrupted run (error) ends where it stopped
  // instead of claiming 100%.
  if (!drew_final_ && last_done_ > 0) Draw(std::chrono::steady_clock::now());
  if (mode_ == ProgressMode::kBar) fmt::print(stderr, "\n");
}

}  // namespace qforge::cli
