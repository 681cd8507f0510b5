// Opens any supported input by looking at it: a directory (Hugging Face), *.safetensors, a GGUF file
// (magic "GGUF") or a llama2.c checkpoint (*.bin). The one entry point commands use.
#pragma once

#include <string>

#include "qforge/core/status.h"
#include "qforge/formats/source_model.h"

namespace qforge {

struct OpenOptions {
  std::string tokenizer;  // llama2.c: tokenizer.bin path (optional)
};

StatusOr<SourceModel> OpenModelSource(const std::string& path, const OpenOptions& options = {});

}  // namespace qforge
