// Synthetic Llama-family models with realistic shapes (rows that are multiples of 256, many layers),
// for what the tiny real models cannot cover: k-quant super-blocks, llama.cpp's per-layer mix rules,
// speed. Values are deterministic pseudo-random (a seed), Gaussian with rare outliers like trained weights.
#pragma once

#include <cstdint>
#include <string>

#include "qforge/formats/source_model.h"

namespace qforge::testing {

struct SyntheticSpec {
  int n_embd = 256;
  int n_ff = 512;
  int n_layer = 16;
  int n_head = 8;
  int n_head_kv = 2;
  int n_vocab = 512;
  bool tied_output = false;
  uint64_t seed = 1;
};

// Tensors in llama.cpp's order and naming, F32, with a SentencePiece-style vocabulary of n_vocab tokens.
SourceModel MakeSyntheticLlama(const SyntheticSpec& spec);

}  // namespace qforge::testing
