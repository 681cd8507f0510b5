// Clean stop on SIGINT/SIGTERM: temporary output files registered here are unlinked by the signal
// handler, which then re-raises the signal. This is the one process-wide table in qforge (a signal
// handler cannot receive context), kept to fixed-size, async-signal-safe storage.
#pragma once

namespace qforge {

// Installs the SIGINT/SIGTERM handlers (idempotent). The CLI calls it once at start-up.
void InstallInterruptHandlers();
// Registers a temporary path for removal on interruption; returns a slot id (or -1 if the table is full).
int RegisterTempFile(const char* path);
void UnregisterTempFile(int slot);

}  // namespace qforge
