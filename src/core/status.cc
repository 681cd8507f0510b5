// Formatting of Status for the CLI and test messages.
#include "qforge/core/status.h"

#include <fmt/format.h>

namespace qforge {

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out;
  if (!file_.empty()) out += file_ + ": ";
  if (offset_ >= 0) out += fmt::format("offset {}: ", offset_);
  out += reason_;
  return out;
}

}  // namespace qforge
