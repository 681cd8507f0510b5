// libFuzzer target: ParseSafetensors on arbitrary bytes must return a Status, never crash, throw or read
// outside the buffer; accepted files must have tensors that lie inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "qforge/formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  auto f = qforge::ParseSafetensors(bytes, "fuzz.safetensors");
  if (!f.ok()) return 0;
  for (const auto& t : f->tensors) {
    if (t.data.size() > 0 && (t.data.data() < data || t.data.data() + t.data.size() > data + size)) std::abort();
    volatile uint8_t sink = 0;
    for (uint8_t b : t.data) sink = sink ^ b;  // touch every byte (ASan checks the bounds)
  }
  return 0;
}
