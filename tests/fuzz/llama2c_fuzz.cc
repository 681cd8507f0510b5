// libFuzzer target for the llama2.c readers: the input is tried as a checkpoint (every tensor is then
// read back, so a span past the input would trip ASan) and as a tokenizer whose expected vocabulary
// size comes from the first input byte.
#include <cstdint>
#include <span>
#include <vector>

#include "qforge/formats/llama2c.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  auto model = qforge::ParseLlama2cCheckpoint(bytes, "fuzz.bin");
  if (model.ok()) {
    std::vector<float> buf;
    for (const auto& t : model->tensors) {
      buf.resize(t.numel());  // bounded: the checkpoint covers every tensor, so numel*4 <= size
      (void)t.read_f32(buf.data());
    }
  }
  if (size > 0) {
    qforge::Metadata md;
    (void)qforge::ParseLlama2cTokenizer(bytes.subspan(1), "fuzz_tok.bin", data[0], &md);
  }
  return 0;
}
