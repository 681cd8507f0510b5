// Compare reports: Pareto front selection, self-contained HTML with the plot and the table, JSON fields.
#include "qforge/eval/report.h"

#include <gtest/gtest.h>

namespace qforge::eval {
namespace {

CompareRow Row(const std::string& type, uint64_t bytes, double kld) {
  CompareRow r;
  r.type = type;
  r.file_bytes = bytes;
  r.summary.has_ref = true;
  r.summary.kld.value = kld;
  return r;
}

TEST(Report, ParetoFront) {
  std::vector<CompareRow> rows = {Row("A", 100, 0.5), Row("B", 200, 0.1), Row("C", 150, 0.6),  // C dominated by A
                                  Row("D", 300, 0.1), Row("E", 50, 2.0), Row("F", 200, 0.1)};  // D dominated; B = F
  EXPECT_EQ(ParetoFront(rows), (std::vector<size_t>{4, 0, 1, 5}));
  EXPECT_TRUE(ParetoFront({}).empty());
}

TEST(Report, HtmlIsSelfContained) {
  CompareReport r;
  r.source = "m<1>.gguf";
  r.text = "t.txt";
  r.protocol = "windows";
  r.rows = {Row("Q8_0", 4000000, 0.001), Row("Q4_0", 2000000, 0.05), Row("Q2_K", 2000000, 0.05),
            Row("Q3_K_M", 2500000, 0.08)};
  const std::string html = CompareToHtml(r);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("<polyline"), std::string::npos);
  EXPECT_NE(html.find("m&lt;1&gt;.gguf"), std::string::npos);
  EXPECT_NE(html.find(">Q4_0, Q2_K<"), std::string::npos);  // identical points share a label
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  auto j = CompareToJson(r);
  ASSERT_EQ(j["rows"].size(), 4u);
  EXPECT_TRUE(j["rows"][0]["pareto"].get<bool>());
  EXPECT_FALSE(j["rows"][3]["pareto"].get<bool>());
  EXPECT_EQ(j["rows"][1]["eval"]["kld"]["mean"].get<double>(), 0.05);
  EXPECT_NE(FormatCompareTable(r).find("Q3_K_M"), std::string::npos);
}

}  // namespace
}  // namespace qforge::eval
