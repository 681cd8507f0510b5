// Which positions each protocol scores, on tiny synthetic token streams.
#include "qforge/eval/protocol.h"

#include <gtest/gtest.h>

#include <numeric>

namespace qforge::eval {
namespace {

TEST(Protocol, WindowsScoreSecondHalfWithBos) {
  std::vector<int32_t> toks(30);
  std::iota(toks.begin(), toks.end(), 100);  // 100..129
  auto plan = BuildWindowPlan(toks, 8, /*bos=*/1, /*chunks=*/-1);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->seqs.size(), 3u);  // 30 / 8: the partial last window (24..29) is dropped
  for (size_t c = 0; c < 3; ++c) {
    const auto& s = plan->seqs[c];
    ASSERT_EQ(s.tokens.size(), 8u);
    EXPECT_EQ(s.tokens[0], 1);  // BOS replaces the window's first token
    for (int i = 1; i < 8; ++i) EXPECT_EQ(s.tokens[i], 100 + static_cast<int>(c) * 8 + i);
    // Logits at positions 4, 5, 6 predict tokens 5, 6, 7: n_ctx - 1 - n_ctx/2 = 3 predictions.
    EXPECT_EQ(s.score_from, 4);
    EXPECT_EQ(s.scored(), 3u);
  }
  EXPECT_EQ(plan->positions(), 9u);
  auto two = BuildWindowPlan(toks, 8, 1, 2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->seqs.size(), 2u);
  auto odd = BuildWindowPlan(toks, 7, -1, -1);  // no BOS: first token kept; first = 3 -> 3 predictions
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->seqs[1].tokens[0], 107);
  EXPECT_EQ(odd->seqs[1].score_from, 3);
  EXPECT_EQ(odd->seqs[1].scored(), 3u);
}

TEST(Protocol, WindowsNeedTwoContexts) {
  std::vector<int32_t> toks(15, 5);
  auto plan = BuildWindowPlan(toks, 8, 1, -1);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().reason().find("at least 16"), std::string::npos) << plan.status().reason();
}

TEST(Protocol, SplitOnBlankLines) {
  auto pieces = SplitOnBlankLines("  a b \n\n\n\nc\n d\n\n \t\n\ne  \n\n");
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0], "a b");
  EXPECT_EQ(pieces[1], "c\n d");
  EXPECT_EQ(pieces[2], "e");
  EXPECT_TRUE(SplitOnBlankLines("\n\n \n\n").empty());
}

}  // namespace
}  // namespace qforge::eval
