// AtomicFile: the target appears only on Commit, an existing target survives a failed or abandoned
// write, and write errors (file size limit) are reported with the target's name.
#include "qforge/core/atomic_file.h"
#include "read_file.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace qforge {
namespace {

namespace fs = std::filesystem;

fs::path TempDir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("qforge_atomic_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

size_t CountEntries(const fs::path& d) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(d)) ++n;
  return n;
}

TEST(AtomicFile, CommitPublishesCompleteFile) {
  fs::path d = TempDir("commit");
  fs::path target = d / "out.bin";
  auto f = AtomicFile::Create(target.string());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  std::string big(3 << 20, 'x');  // larger than the internal buffer
  ASSERT_TRUE(f->Write("abc", 3).ok());
  ASSERT_TRUE(f->Write(big.data(), big.size()).ok());
  ASSERT_TRUE(f->WriteZeros(5).ok());
  EXPECT_FALSE(fs::exists(target));
  ASSERT_TRUE(f->Commit().ok());
  EXPECT_EQ(testing::ReadFileBytes(target), "abc" + big + std::string(5, '\0'));
  EXPECT_EQ(CountEntries(d), 1u);  // no temporary left
}

// A SIGKILLed run leaves "<target>.tmp-<pid>-<n>"; a later process with the same pid must not fail on it
// nor touch it.
TEST(AtomicFile, StaleTemporaryOfTheSamePidIsSkipped) {
  fs::path d = TempDir("stale");
  fs::path target = d / "out.bin";
  for (int n = 0; n < 64; ++n) {
    std::ofstream(target.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(n)) << "stale";
  }
  auto f = AtomicFile::Create(target.string());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE(f->Write("new", 3).ok());
  ASSERT_TRUE(f->Commit().ok());
  EXPECT_EQ(testing::ReadFileBytes(target), "new");
  EXPECT_EQ(CountEntries(d), 65u);  // the 64 stale temporaries are left as they were
  EXPECT_EQ(testing::ReadFileBytes(target.string() + ".tmp-" + std::to_string(::getpid()) + "-0"), "stale");
}

TEST(AtomicFile, AbandonKeepsPreviousFile) {
  fs::path d = TempDir("abandon");
  fs::path target = d / "out.bin";
  std::ofstream(target) << "previous";
  {
    auto f = AtomicFile::Create(target.string());
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(f->Write("new data", 8).ok());
  }  // destroyed without Commit
  EXPECT_EQ(testing::ReadFileBytes(target), "previous");
  EXPECT_EQ(CountEntries(d), 1u);
}

TEST(AtomicFile, DirectoryTargetAndMissingFolderAreErrors) {
  fs::path d = TempDir("errors");
  auto a = AtomicFile::Create(d.string());
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().reason().find("is a directory"), std::string::npos);
  auto b = AtomicFile::Create((d / "missing" / "x.gguf").string());
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().reason().find("cannot create"), std::string::npos);
}

TEST(AtomicFile, FileSizeLimitIsReportedAndCleanedUp) {
  fs::path d = TempDir("fsize");
  fs::path target = d / "out.bin";
  std::ofstream(target) << "previous";
  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  struct rlimit lim = old;
  lim.rlim_cur = 1 << 20;  // 1 MiB
  signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  Status st;
  {
    auto f = AtomicFile::Create(target.string());
    ASSERT_TRUE(f.ok());
    std::string chunk(1 << 20, 'y');
    for (int i = 0; i < 4 && st.ok(); ++i) st = f->Write(chunk.data(), chunk.size());
    if (st.ok()) st = f->Commit();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, SIG_DFL);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.ToString().find(target.string()), std::string::npos) << st.ToString();
  EXPECT_EQ(testing::ReadFileBytes(target), "previous");
  EXPECT_EQ(CountEntries(d), 1u);
}

}  // namespace
}  // namespace qforge
