// The evaluation loop: one sequence at a time from position 0 (cache reset), all logits, then the
// scored positions in plan order (deterministic whatever the thread count).
#include "qforge/eval/evaluate.h"

#include <optional>
#include <vector>

#include "qforge/runtime/llama_context.h"

namespace qforge::eval {

StatusOr<EvalSummary> Evaluate(const LlamaModel& model, const EvalPlan& plan, const EvalReference& ref,
                               const EvalOptions& options) {
  const int n_vocab = model.hparams().n_vocab;
  if (ref.model && ref.logits) return Status::Error("give either a reference model or saved reference logits");
  if (ref.model && ref.model->hparams().n_vocab != n_vocab)
    return Status::Error("the reference model has " + std::to_string(ref.model->hparams().n_vocab) +
                         " tokens in its vocabulary, the evaluated model " + std::to_string(n_vocab));
  if (ref.logits) QF_RETURN_IF_ERROR(CheckRefMatches(*ref.logits, plan, n_vocab, ref.logits_path));
  for (const auto& s : plan.seqs)
    for (int32_t t : s.tokens)
      if (t < 0 || t >= n_vocab) return Status::Error("token id " + std::to_string(t) + " outside the vocabulary");

  const int n_ctx = plan.max_len();
  LlamaContext ctx(model, n_ctx, options.threads);
  std::optional<LlamaContext> ref_ctx;
  if (ref.model) ref_ctx.emplace(*ref.model, n_ctx, options.threads);
  std::optional<RefLogitsWriter> writer;
  if (!options.save_ref_path.empty()) {
    QF_ASSIGN_OR_RETURN(RefLogitsWriter w, RefLogitsWriter::Create(options.save_ref_path, plan, n_vocab,
                                                                   std::min(options.save_ref_k, n_vocab)));
    writer.emplace(std::move(w));
  }

  EvalAccumulator acc(ref.model != nullptr || ref.logits != nullptr);
  std::vector<float> logits, ref_logits;
  std::vector<uint8_t> mark(static_cast<size_t>(n_vocab), 0);
  TopKRef topk, scratch;
  uint64_t pos_index = 0, done = 0;
  const uint64_t total = plan.positions();
  for (const auto& seq : plan.seqs) {
    ctx.Reset();
    QF_RETURN_IF_ERROR(ctx.Eval(seq.tokens, /*all_logits=*/true, &logits));
    if (ref_ctx) {
      ref_ctx->Reset();
      QF_RETURN_IF_ERROR(ref_ctx->Eval(seq.tokens, true, &ref_logits));
    }
    const std::vector<float>& saved_src = ref_ctx ? ref_logits : logits;
    for (size_t i = static_cast<size_t>(seq.score_from); i + 1 < seq.tokens.size(); ++i) {
      const int32_t target = seq.tokens[i + 1];
      std::span<const float> q(logits.data() + i * n_vocab, static_cast<size_t>(n_vocab));
      PositionStats st;
      if (ref_ctx) {
        st = ComparePosition(std::span<const float>(ref_logits.data() + i * n_vocab, n_vocab), q, target);
      } else if (ref.logits) {
        st = ComparePosition(ref.logits->Record(pos_index, &scratch), q, target, &mark);
      } else {
        st.nll = LogSumExp(q) - q[target];
      }
      acc.Add(st);
      if (writer) {
        MakeTopK(std::span<const float>(saved_src.data() + i * n_vocab, n_vocab), writer->k(), target, &topk);
        QF_RETURN_IF_ERROR(writer->Append(topk));
      }
      ++pos_index;
    }
    done += seq.scored();
    if (options.progress) options.progress(done, total);
  }
  if (writer) QF_RETURN_IF_ERROR(writer->Finish());
  return acc.Summarize();
}

}  // namespace qforge::eval
