// qforge inspect: placeholder until the readers land.
#include "commands.h"

namespace qforge::cli {
void RegisterInspect(CLI::App& app, CommandRegistry& reg) {
  auto* cmd = app.add_subcommand("inspect", "Print a model's metadata and tensor table");
  cmd->callback([&reg] { reg.Set([] { return ReportError(Status::Error("inspect: not implemented yet")); }); });
}
}  // namespace qforge::cli
