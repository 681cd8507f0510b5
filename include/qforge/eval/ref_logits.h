// Saved reference logits (--save-ref / --ref-logits): per scored position, the reference's top-k logits
// with their token ids, the log-sum-exp and tail mass of the full distribution, and its logit of the
// target token; plus the evaluation plan (every token id) so a later run can check it scores the same
// text the same way. Much smaller than llama.cpp's full uint16 log-prob files (k = 64 of 32k tokens).
//
// Layout (little-endian, no padding; every read is bounds-checked, the file is untrusted):
//   header   char magic[8] = "QFREFLG\0", u32 version = 1, u32 n_vocab, u32 k, u32 n_seq,
//            u64 n_tokens, u64 n_positions
//   plan     n_seq x {u32 len, u32 score_from}, then n_tokens x i32 token ids (sequences back to back)
//   records  n_positions x {f64 lse, f64 tail, f32 target_logit, k x i32 id, k x f32 logit}
//            in plan order (sequence by sequence, position by position)
//   trailer  u64 FNV-1a 64 of every preceding byte
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "qforge/core/atomic_file.h"
#include "qforge/core/mapped_file.h"
#include "qforge/core/status.h"
#include "qforge/eval/kld.h"
#include "qforge/eval/protocol.h"

namespace qforge::eval {

inline constexpr char kRefMagic[8] = {'Q', 'F', 'R', 'E', 'F', 'L', 'G', '\0'};
inline constexpr uint32_t kRefVersion = 1;
inline constexpr uint64_t kRefHeaderBytes = 8 + 4 * 4 + 8 * 2;

// Streams records to an AtomicFile; the target appears only after Finish().
class RefLogitsWriter {
 public:
  static StatusOr<RefLogitsWriter> Create(const std::string& path, const EvalPlan& plan, int n_vocab, int k);
  // ref: one record with exactly k ids (MakeTopK with this writer's k).
  Status Append(const TopKRef& ref);
  Status Finish();
  int k() const { return k_; }

 private:
  RefLogitsWriter(AtomicFile file, int k, uint64_t n_positions) : file_(std::move(file)), k_(k), expected_(n_positions) {}
  Status Put(const void* p, size_t n);
  AtomicFile file_;
  int k_;
  uint64_t expected_, written_ = 0;
  uint64_t hash_ = 0xcbf29ce484222325ull;
};

// A validated, memory-mapped reference file.
class RefLogitsFile {
 public:
  static StatusOr<RefLogitsFile> Open(const std::string& path);
  int n_vocab() const { return n_vocab_; }
  int k() const { return k_; }
  uint64_t n_positions() const { return n_positions_; }
  const EvalPlan& plan() const { return plan_; }
  // Record i (0 <= i < n_positions); ids/logits point into the mapping (copied into scratch for alignment).
  TopKView Record(uint64_t i, TopKRef* scratch) const;

 private:
  std::shared_ptr<MappedFile> map_;
  int n_vocab_ = 0, k_ = 0;
  uint64_t n_positions_ = 0, records_offset_ = 0, record_bytes_ = 0;
  EvalPlan plan_;
};

// Checks that a saved reference matches the plan and vocabulary of this run; the error says what differs.
Status CheckRefMatches(const RefLogitsFile& ref, const EvalPlan& plan, int n_vocab, const std::string& path);

}  // namespace qforge::eval
