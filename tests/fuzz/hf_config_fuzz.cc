// libFuzzer target: the same bytes go to the config.json, tokenizer.json and tokenizer.model
// (SentencePiece protobuf) parsers (for tokenizer.json the first
// byte chooses whether a small vocab_size is imposed, so the padding path is exercised too). All must
// turn every input into a Status: no crash, no uncaught JSON exception, no unbounded allocation.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "qforge/formats/hf_model.h"
#include "qforge/formats/sentencepiece_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = qforge::ParseHfConfig(text, "config.json");
  if (config.ok()) {
    qforge::Metadata m;
    qforge::HfConfigToMetadata(*config, &m);
    if (config->rope_scaling_type == "llama3" && config->head_dim <= 4096) (void)qforge::Llama3RopeFactors(*config);
  }
  qforge::HfConfig c;
  c.gguf_arch = size > 0 && (data[0] & 1) ? "qwen2" : "llama";
  c.n_vocab = size > 0 ? (data[0] >> 1) : 0;
  qforge::Metadata m;
  (void)qforge::ParseHfTokenizerJson(text, {}, c, "tokenizer.json", &m);
  (void)qforge::ParseHfTokenizerJson(R"({"model":{"type":"BPE","vocab":{"a":0}}})", text, c, "tokenizer.json", &m);
  (void)qforge::ParseSentencePieceModel({data, size}, "tokenizer.model");
  return 0;
}
