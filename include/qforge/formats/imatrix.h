// Importance-matrix files as llama.cpp's llama-imatrix writes them and llama-quantize reads them.
//
// GGUF imatrix (llama.cpp's current format): general.type = "imatrix"; keys imatrix.datasets (string
// array), imatrix.chunk_count and imatrix.chunk_size (u32); per weight tensor NAME two F32 tensors
// "NAME.in_sum2" [n_cols, n_mat] (Σx² of each input column, raw sums) and "NAME.counts" [1, n_mat] (how many
// input vectors went into each matrix's sums). n_mat > 1 only for 3-D expert tensors (one matrix per expert).
//
// Legacy .dat: int32 entry count; per entry int32 name length, the name, int32 ncall, int32 nval, nval F32
// values; then an optional trailer: int32 chunk count, int32 dataset-name length, the name. The values are
// not raw sums but mean(x²)·ncall, so value/ncall is the per-column mean either way.
//
// Both are untrusted input: every count and length is checked against the bytes, and NaN, Inf or negative
// sums or counts are errors naming the tensor.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/formats/metadata.h"
#include "qforge/formats/source_model.h"

namespace qforge {

// The statistics of one weight tensor. sums holds n_mat blocks of n_cols values (matrix m's columns at
// m·n_cols); counts holds one entry per matrix. From a legacy file n_mat is 1 and counts = {ncall}.
struct ImatrixEntry {
  std::vector<float> sums;
  std::vector<int64_t> counts;
  size_t n_mat() const { return counts.size(); }
  size_t n_cols() const { return counts.empty() ? 0 : sums.size() / counts.size(); }
};

struct Imatrix {
  std::map<std::string, ImatrixEntry> entries;  // by weight tensor name, e.g. "blk.0.attn_q.weight"
  std::vector<std::string> datasets;            // calibration files the sums came from
  int64_t chunk_count = 0;                      // chunks of calibration text processed
  int64_t chunk_size = 0;                       // tokens per chunk (0 = unknown, e.g. a legacy file)
  bool legacy = false;                          // read from a .dat file
};

// Detects the format from the first bytes ("GGUF" magic or not), never from the file name.
StatusOr<Imatrix> ReadImatrix(const std::string& path);
// The same from memory (tests, fuzzing); `name` is used in error messages.
StatusOr<Imatrix> ParseImatrix(std::span<const uint8_t> bytes, const std::string& name);

// Writers (atomic). The GGUF writer stores raw sums and counts; the .dat writer stores mean·ncall with
// ncall = ceil(count / chunk_size) (or count itself when chunk_size is unknown), as llama.cpp does.
Status WriteImatrixGguf(const Imatrix& imatrix, const std::string& path);
Status WriteImatrixDat(const Imatrix& imatrix, const std::string& path);
// By extension: ".dat" writes the legacy format, anything else GGUF (llama.cpp's default).
Status WriteImatrix(const Imatrix& imatrix, const std::string& path);

// What the quantizers weigh each column's error by: mean x² per column (sum / count). A matrix whose count
// is 0 (an expert never routed to) gets 1 for every column, like llama.cpp. The result is the ImportanceMap
// of pipeline/quantize.h (spelled out here: formats/ sits below pipeline/).
std::map<std::string, std::vector<float>> ToImportanceMap(const Imatrix& imatrix);

// Checks an importance map against the model about to be quantized: an entry whose tensor exists must have
// ne[0]·ne[2] values (columns times experts), otherwise an error names the tensor. Entry names the model
// does not have are returned in *unknown (the caller warns; llama.cpp ignores them too).
Status CheckImportanceAgainstModel(const std::map<std::string, std::vector<float>>& importance,
                                   const SourceModel& model, std::vector<std::string>* unknown);

// The provenance keys llama-quantize writes into a model quantized with an imatrix:
// quantize.imatrix.file, .dataset (first dataset, if any), .entries_count, .chunks_count.
std::vector<std::pair<std::string, MetaValue>> ImatrixProvenance(const Imatrix& imatrix, const std::string& path);

}  // namespace qforge
