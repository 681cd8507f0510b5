#include "qforge/core/cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace qforge {

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
namespace {
// The low half of XCR0: which register states the OS saves. Only after CPUID reports OSXSAVE.
unsigned Xcr0Low() {
  unsigned lo = 0, hi = 0;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return lo;
}
}  // namespace
#endif

bool CpuHasF16c() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = [] {
    __builtin_cpu_init();
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;  // CPUID.1:ECX.F16C[bit 29]
    return f16c && __builtin_cpu_supports("avx");
  }();
  return ok;
#else
  return false;
#endif
}

bool CpuHasAvx2Fma() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = CpuHasF16c() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

bool CpuHasAvx512Vnni() {
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = [] {
    if (!CpuHasAvx2Fma()) return false;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || (c & (1u << 27)) == 0) return false;  // OSXSAVE: xgetbv usable
    if ((Xcr0Low() & 0xE6u) != 0xE6u) return false;  // the OS saves SSE, AVX, opmask and both zmm halves
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    const bool f = (b & (1u << 16)) != 0, bw = (b & (1u << 30)) != 0, vl = (b & (1u << 31)) != 0;
    const bool vbmi = (c & (1u << 1)) != 0, vnni = (c & (1u << 11)) != 0;
    return f && bw && vl && vbmi && vnni;
  }();
  return ok;
#else
  return false;
#endif
}

bool CpuHasAmxInt8() {
#if defined(__linux__) && defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = [] {
    if (!CpuHasAvx512Vnni()) return false;  // the AMX kernels finish each tile with AVX-512
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    if ((d & (1u << 24)) == 0 || (d & (1u << 25)) == 0) return false;  // AMX-TILE, AMX-INT8
    if ((Xcr0Low() & (3u << 17)) != (3u << 17)) return false;  // the OS manages XTILECFG and XTILEDATA
    // Linux hands out the 8 KB of tile state per process on request (arch_prctl ARCH_REQ_XCOMP_PERM for
    // XFEATURE_XTILEDATA); without it the first tile instruction is a fatal signal.
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
#else
  return false;
#endif
}

}  // namespace qforge
