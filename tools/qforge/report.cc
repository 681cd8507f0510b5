// Error printing shared by all commands.
#include <fmt/format.h>

#include "commands.h"

namespace qforge::cli {

int ReportError(const Status& status) {
  fmt::print(stderr, "qforge: error: {}\n", status.ToString());
  return 1;
}

}  // namespace qforge::cli
