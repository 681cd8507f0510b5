// Temporary-file-then-rename output. The temporary name is "<target>.tmp-<pid>-<n>" in the same folder,
// so the rename is atomic (same filesystem).
#include "qforge/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "qforge/core/interrupt.h"

namespace qforge {
namespace {

constexpr size_t kBufferSize = 1 << 20;

Status ErrnoError(const std::string& what, const std::string& path, int err) {
  return Status::Error(what + ": " + std::strerror(err), path);
}

}  // namespace

StatusOr<AtomicFile> AtomicFile::Create(const std::string& target_path) {
  static std::atomic<int> counter{0};
  AtomicFile f;
  f.target_ = target_path;
  std::error_code ec;
  if (std::filesystem::is_directory(target_path, ec)) {
    return Status::Error("output path is a directory", target_path);
  }
  // A run killed with SIGKILL leaves its temporary behind; a later process may get the same pid, so a
  // taken name is skipped rather than reported (O_EXCL never reuses or truncates someone else's file).
  for (int attempt = 0; attempt < 1000; ++attempt) {
    f.temp_ = fmt::format("{}.tmp-{}-{}", target_path, ::getpid(), counter.fetch_add(1));
    f.fd_ = ::open(f.temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f.fd_ >= 0 || errno != EEXIST) break;
  }
  if (f.fd_ < 0) return ErrnoError("cannot create temporary output file", f.temp_, errno);
  f.interrupt_slot_ = RegisterTempFile(f.temp_.c_str());
  f.buffer_.reserve(kBufferSize);
  return f;
}

AtomicFile::AtomicFile(AtomicFile&& o) noexcept { *this = std::move(o); }

AtomicFile& AtomicFile::operator=(AtomicFile&& o) noexcept {
  if (this != &o) {
    Abandon();
    fd_ = o.fd_;
    target_ = std::move(o.target_);
    temp_ = std::move(o.temp_);
    written_ = o.written_;
    buffer_ = std::move(o.buffer_);
    interrupt_slot_ = o.interrupt_slot_;
    o.fd_ = -1;
    o.interrupt_slot_ = -1;
  }
  return *this;
}

AtomicFile::~AtomicFile() { Abandon(); }

void AtomicFile::Abandon() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(temp_.c_str());
  }
  UnregisterTempFile(interrupt_slot_);
  interrupt_slot_ = -1;
}

Status AtomicFile::WriteAll(const char* p, size_t left) {
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write failed", target_, errno);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status AtomicFile::Flush() {
  QF_RETURN_IF_ERROR(WriteAll(buffer_.data(), buffer_.size()));
  buffer_.clear();
  return Status::Ok();
}

Status AtomicFile::Write(std::span<const uint8_t> bytes) {
  if (fd_ < 0) return Status::Error("write to a closed output file", target_);
  if (buffer_.size() + bytes.size() > kBufferSize) QF_RETURN_IF_ERROR(Flush());
  if (bytes.size() >= kBufferSize) {  // large tensors bypass the buffer
    QF_RETURN_IF_ERROR(WriteAll(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  } else {
    buffer_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  written_ += bytes.size();
  return Status::Ok();
}

Status AtomicFile::WriteZeros(uint64_t n) {
  static const uint8_t kZeros[4096] = {};
  while (n > 0) {
    size_t k = n < sizeof(kZeros) ? static_cast<size_t>(n) : sizeof(kZeros);
    QF_RETURN_IF_ERROR(Write(kZeros, k));
    n -= k;
  }
  return Status::Ok();
}

Status AtomicFile::Commit() {
  if (fd_ < 0) return Status::Error("commit of a closed output file", target_);
  Status st = Flush();
  if (st.ok() && ::fsync(fd_) != 0) st = ErrnoError("fsync failed", target_, errno);
  if (!st.ok()) {
    Abandon();
    return st;
  }
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_.c_str(), target_.c_str()) != 0) {
    int e = errno;
    ::unlink(temp_.c_str());
    UnregisterTempFile(interrupt_slot_);
    interrupt_slot_ = -1;
    return ErrnoError("cannot rename temporary file into place", target_, e);
  }
  UnregisterTempFile(interrupt_slot_);
  interrupt_slot_ = -1;
  std::string dir = std::filesystem::path(target_).parent_path().string();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

}  // namespace qforge
