// A whole float model run block by block with BlockForward (tests only): embedding, blocks, final norm and
// classifier (tied to token_embd when output.weight is absent).
#pragma once

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "qforge/algo/calibration_text.h"
#include "qforge/algo/layer_forward.h"
#include "qforge/formats/model_source.h"
#include "qforge/pipeline/tensor_codec.h"
#include "qforge/runtime/tokenizer.h"

namespace qforge::testing_util {

struct FloatModel {
  BlockShape shape;
  std::vector<BlockWeights> blocks;
  std::vector<float> embd, output_norm, output;
};

inline StatusOr<FloatModel> LoadFloatModel(const SourceModel& model) {
  FloatModel f;
  QF_ASSIGN_OR_RETURN(f.shape, ReadBlockShape(model));
  for (int l = 0; l < f.shape.n_layer; ++l) {
    QF_ASSIGN_OR_RETURN(BlockWeights w, ReadBlockWeights(model, f.shape, l));
    f.blocks.push_back(std::move(w));
  }
  auto read = [&](const std::string& name, std::vector<float>* out) -> Status {
    const SourceTensor* t = model.FindTensor(name);
    if (t == nullptr) return Status::Error("missing " + name);
    out->resize(t->numel());
    return ReadTensorF32(*t, out->data());
  };
  QF_RETURN_IF_ERROR(read("token_embd.weight", &f.embd));
  QF_RETURN_IF_ERROR(read("output_norm.weight", &f.output_norm));
  if (model.FindTensor("output.weight") != nullptr) {
    QF_RETURN_IF_ERROR(read("output.weight", &f.output));
  } else {
    f.output = f.embd;
  }
  return f;
}

inline std::vector<float> Embed(const FloatModel& f, const std::vector<int32_t>& tokens) {
  const int e = f.shape.n_embd;
  std::vector<float> h(tokens.size() * e);
  for (size_t i = 0; i < tokens.size(); ++i) std::memcpy(&h[i * e], &f.embd[tokens[i] * e], sizeof(float) * e);
  return h;
}

// [n x n_vocab] logits from the last hidden states.
inline std::vector<float> Logits(const FloatModel& f, const std::vector<float>& hidden, int64_t n) {
  const int e = f.shape.n_embd;
  std::vector<float> xn(hidden.size());
  for (int64_t t = 0; t < n; ++t) {
    double ss = 0;
    for (int i = 0; i < e; ++i) ss += static_cast<double>(hidden[t * e + i]) * hidden[t * e + i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / e) + f.shape.rms_eps);
    for (int i = 0; i < e; ++i) xn[t * e + i] = hidden[t * e + i] * scale * f.output_norm[i];
  }
  std::vector<float> logits(static_cast<size_t>(n) * f.shape.n_vocab);
  LinearRows(xn.data(), n, e, f.output.data(), f.shape.n_vocab, logits.data());
  return logits;
}

inline std::vector<float> ModelLogits(const FloatModel& f, const std::vector<int32_t>& tokens) {
  std::vector<float> h = Embed(f, tokens);
  for (const auto& b : f.blocks) BlockForward(f.shape, b, h.data(), static_cast<int64_t>(tokens.size()));
  return Logits(f, h, static_cast<int64_t>(tokens.size()));
}

// Calibration chunks of `ctx` tokens from the TinyStories sample (tokens: total wanted).
inline StatusOr<std::vector<std::vector<int32_t>>> StoryChunks(const SourceModel& model, int64_t tokens, int ctx) {
  QF_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::FromMetadata(model.metadata));
  CalibrationOptions o;
  o.file = std::string(QFORGE_SHARED_DIR) + "/data/tinystories/tinystories_valid_head.txt";
  o.tokens = tokens;
  o.ctx = ctx;
  return LoadCalibrationChunks(tok, o);
}

}  // namespace qforge::testing_util
