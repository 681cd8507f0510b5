// Fixed table of temporary paths removed on SIGINT/SIGTERM; the handler only calls unlink/write/raise,
// which are async-signal-safe.
#include "qforge/core/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace qforge {
namespace {

constexpr int kSlots = 16;
constexpr int kPathMax = 4096;
char g_paths[kSlots][kPathMax];
std::atomic<bool> g_used[kSlots];

void OnSignal(int sig) {
  for (int i = 0; i < kSlots; ++i) {
    if (g_used[i].load()) ::unlink(g_paths[i]);
  }
  static const char kMsg[] = "\nqforge: interrupted; partial output removed\n";
  ssize_t ignored = ::write(2, kMsg, sizeof(kMsg) - 1);
  (void)ignored;
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void InstallInterruptHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

int RegisterTempFile(const char* path) {
  if (std::strlen(path) >= static_cast<size_t>(kPathMax)) return -1;
  for (int i = 0; i < kSlots; ++i) {
    if (!g_used[i].load()) {
      std::strcpy(g_paths[i], path);
      g_used[i].store(true);
      return i;
    }
  }
  return -1;
}

void UnregisterTempFile(int slot) {
  if (slot >= 0 && slot < kSlots) g_used[slot].store(false);
}

}  // namespace qforge
