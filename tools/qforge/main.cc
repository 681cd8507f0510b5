// qforge CLI entry point: registers one subcommand per file (commands.h) and maps Status to exit codes.
#include <CLI/CLI.hpp>

#include "commands.h"
#include "qforge/core/interrupt.h"

int main(int argc, char** argv) {
  qforge::InstallInterruptHandlers();
  CLI::App app{"qforge: quantize LLMs to fit cheap hardware, measure what it costs, and run them on a CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "qforge 0.1.0");
  qforge::cli::CommandRegistry registry;
  qforge::cli::RegisterAllCommands(app, registry);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return registry.Run();
}
