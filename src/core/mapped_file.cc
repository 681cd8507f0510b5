// mmap-backed read-only file. An empty file maps to an empty span (mmap of 0 bytes is invalid).
// Live mappings are listed in a registry so CopyMappedBytes can find the file behind a span.
#include "qforge/core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

namespace qforge {
namespace {

struct LiveMapping {
  const uint8_t* data;
  uint64_t size;
  int fd;
  const std::string* path;
};

std::mutex& RegistryMutex() {
  static std::mutex mu;
  return mu;
}
std::vector<LiveMapping>& Registry() {
  static std::vector<LiveMapping> live;
  return live;
}

}  // namespace

StatusOr<std::shared_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Error(std::string("cannot open: ") + std::strerror(errno), path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Status::Error(std::string("cannot stat: ") + std::strerror(e), path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::Error("not a regular file", path);
  }
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<uint64_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return Status::Error(std::string("cannot map: ") + std::strerror(e), path);
    }
    f->data_ = static_cast<const uint8_t*>(p);
    f->fd_ = fd;
    std::lock_guard<std::mutex> lock(RegistryMutex());
    Registry().push_back({f->data_, f->size_, fd, &f->path_});
  } else {
    ::close(fd);
  }
  return f;
}

void ReleaseMappedPages(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  // Only whole pages inside the span: a neighbouring tensor may share the first or last page.
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(bytes.data()) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(bytes.data()) + bytes.size()) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

Status CopyMappedBytes(std::span<const uint8_t> src, uint8_t* dst) {
  if (src.empty()) return Status::Ok();
  int fd = -1;
  uint64_t offset = 0;
  std::string path;
  {
    // The lookup is per call (a chunk of rows, ~100 KB), so a linear scan of the few live files is cheap.
    std::lock_guard<std::mutex> lock(RegistryMutex());
    const auto p = reinterpret_cast<uintptr_t>(src.data());
    for (const LiveMapping& m : Registry()) {
      const auto b = reinterpret_cast<uintptr_t>(m.data);
      if (p >= b && p - b <= m.size && src.size() <= m.size - (p - b)) {
        // dup: the caller may outlive the lock; a MappedFile destroyed meanwhile must not close our fd.
        fd = ::dup(m.fd);
        offset = p - b;
        path = *m.path;
        break;
      }
    }
  }
  if (fd < 0) {
    std::memcpy(dst, src.data(), src.size());
    return Status::Ok();
  }
  size_t done = 0;
  Status status = Status::Ok();
  while (done < src.size()) {
    const ssize_t r = ::pread(fd, dst + done, src.size() - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      status = Status::Error(r < 0 ? std::string("read failed: ") + std::strerror(errno)
                                   : std::string("file ended early (truncated while in use?)"),
                             path);
      break;
    }
    done += static_cast<size_t>(r);
  }
  ::close(fd);
  return status;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) {
    {
      std::lock_guard<std::mutex> lock(RegistryMutex());
      auto& live = Registry();
      live.erase(std::remove_if(live.begin(), live.end(), [&](const LiveMapping& m) { return m.data == data_; }),
                 live.end());
    }
    ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace qforge
