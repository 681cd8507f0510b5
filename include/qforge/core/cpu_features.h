// Which instruction-set extensions this CPU has, checked once. One place for it because the compilers
// differ: clang 14's __builtin_cpu_supports does not know "f16c", so F16C is read from CPUID directly.
#pragma once

namespace qforge {

bool CpuHasF16c();      // F16C (and AVX, which its instructions need)
bool CpuHasAvx2Fma();   // AVX2, FMA and F16C: what the kernels' and encoders' AVX2 paths use
// AVX-512 F, BW, VL, VNNI and VBMI, with the OS saving the 512-bit state, on top of CpuHasAvx2Fma(): what the
// kernels' AVX-512 paths use (Ice Lake and later, AMD Zen 4 and later).
bool CpuHasAvx512Vnni();
// AMX-TILE and AMX-INT8 (Sapphire Rapids and later), on top of CpuHasAvx512Vnni(), with this process granted
// the tile state by Linux (the first call asks for it). Only Linux on x86-64.
bool CpuHasAmxInt8();

}  // namespace qforge
