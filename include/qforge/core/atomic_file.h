// An output file that appears complete or not at all: data goes to a temporary file in the target's
// folder; Commit() fsyncs, renames it over the target and fsyncs the folder. If the object is
// destroyed uncommitted (error, exception) or the process gets SIGINT/SIGTERM (see interrupt.h), the
// temporary file is removed and an existing target is left untouched.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "qforge/core/status.h"

namespace qforge {

class AtomicFile {
 public:
  static StatusOr<AtomicFile> Create(const std::string& target_path);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  // Appends bytes (buffered). Errors (disk full, RLIMIT_FSIZE) name the target path.
  Status Write(std::span<const uint8_t> bytes);
  Status Write(const void* data, size_t n) {
    return Write(std::span<const uint8_t>(static_cast<const uint8_t*>(data), n));
  }
  Status WriteZeros(uint64_t n);
  uint64_t bytes_written() const { return written_; }
  const std::string& target_path() const { return target_; }
  const std::string& temp_path() const { return temp_; }

  // Flush, fsync, rename into place, fsync the folder. After this the object is inert.
  Status Commit();
  // Remove the temporary file now (also done by the destructor).
  void Abandon();

 private:
  AtomicFile() = default;
  Status Flush();
  Status WriteAll(const char* p, size_t n);

  int fd_ = -1;
  std::string target_;
  std::string temp_;
  uint64_t written_ = 0;
  std::string buffer_;
  int interrupt_slot_ = -1;
};

}  // namespace qforge
