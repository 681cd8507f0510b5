// Determinism: the same input and options give byte-identical files, whatever the thread count; and an
// interrupted or failed write never leaves a partial file at the output path.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "qforge/algo/policy.h"
#include "qforge/pipeline/quantize.h"
#include "synthetic_model.h"
#include "read_file.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

TEST(Determinism, SameBytesForOneAndTwoThreadsAndRepeatedRuns) {
  fs::path dir = fs::temp_directory_path() / ("qforge_det_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  testing::SyntheticSpec spec;
  spec.n_layer = 1;
  spec.n_ff = 256;
  spec.n_vocab = 320;
  SourceModel m = testing::MakeSyntheticLlama(spec);
  for (const std::string type : {"Q4_K_M", "Q4_0", "IQ4_XS", "Q2_K"}) {
    auto policy = MakePolicy(type, ModelFactsFromSource(m));
    ASSERT_TRUE(policy.ok());
    std::string bytes[3];
    const int threads[3] = {1, 2, 2};
    for (int i = 0; i < 3; ++i) {
      const fs::path out = dir / (type + std::to_string(i) + ".gguf");
      QuantizeOptions opt;
      opt.threads = threads[i];
      ASSERT_TRUE(QuantizeToGguf(m, *policy, out.string(), opt).ok());
      bytes[i] = testing::ReadFileBytes(out);
    }
    EXPECT_FALSE(bytes[0].empty());
    EXPECT_EQ(bytes[0], bytes[1]) << type << ": 1 vs 2 threads";
    EXPECT_EQ(bytes[1], bytes[2]) << type << ": repeated run";
  }
  fs::remove_all(dir);
}

// SIGKILL at random moments while writing: the output path holds either the previous complete file or the
// new complete one, never a partial file.
TEST(CrashSafety, KilledWriterLeavesPreviousOrCompleteFile) {
  fs::path dir = fs::temp_directory_path() / ("qforge_kill_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  testing::SyntheticSpec spec;
  spec.n_layer = 4;
  SourceModel m = testing::MakeSyntheticLlama(spec);
  auto policy = MakePolicy("Q4_K_M", ModelFactsFromSource(m));
  ASSERT_TRUE(policy.ok());
  const fs::path out = dir / "model.gguf";
  ASSERT_TRUE(QuantizeToGguf(m, *policy, out.string(), {}).ok());
  const std::string complete = testing::ReadFileBytes(out);
  const std::string previous = "previous file contents";
  std::mt19937 rng(7);
  std::printf("seed 7\n");
  for (int run = 0; run < 6; ++run) {
    std::ofstream(out, std::ios::binary | std::ios::trunc) << previous;
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      Status st = QuantizeToGguf(m, *policy, out.string(), {}).status();
      _exit(st.ok() ? 0 : 1);
    }
    ::usleep(std::uniform_int_distribution<int>(0, 400000)(rng));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    const std::string now = testing::ReadFileBytes(out);
    EXPECT_TRUE(now == previous || now == complete) << "run " << run << ": partial file of " << now.size() << " bytes";
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qforge
