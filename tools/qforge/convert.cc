// qforge convert: placeholder until the readers land.
#include "commands.h"

namespace qforge::cli {
void RegisterConvert(CLI::App& app, CommandRegistry& reg) {
  auto* cmd = app.add_subcommand("convert", "Convert a model to GGUF");
  cmd->callback([&reg] { reg.Set([] { return ReportError(Status::Error("convert: not implemented yet")); }); });
}
}  // namespace qforge::cli
