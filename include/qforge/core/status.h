// Errors as values: a Status carries the file, the byte offset (when known) and the reason.
// Library code returns Status / StatusOr<T>; only the CLI prints them and chooses an exit code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace qforge {

class Status {
 public:
  Status() = default;  // OK
  static Status Ok() { return Status(); }
  // reason: what is wrong, in words a user can act on. file/offset: where (offset < 0 = unknown).
  static Status Error(std::string reason, std::string file = {}, int64_t offset = -1) {
    Status s;
    s.failed_ = true;
    s.reason_ = std::move(reason);
    s.file_ = std::move(file);
    s.offset_ = offset;
    return s;
  }

  bool ok() const { return !failed_; }
  const std::string& reason() const { return reason_; }
  const std::string& file() const { return file_; }
  int64_t offset() const { return offset_; }

  // Returns a copy with the file filled in if it was empty (lets low-level parsers stay path-agnostic).
  Status WithFile(const std::string& file) const {
    Status s = *this;
    if (s.failed_ && s.file_.empty()) s.file_ = file;
    return s;
  }
  // Returns a copy whose reason is prefixed with context ("tensor blk.0.attn_q.weight: ...").
  Status WithContext(const std::string& context) const {
    Status s = *this;
    if (s.failed_) s.reason_ = context + ": " + s.reason_;
    return s;
  }

  // "file: offset N: reason" — the one format every command prints.
  std::string ToString() const;

 private:
  bool failed_ = false;
  std::string reason_;
  std::string file_;
  int64_t offset_ = -1;
};

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  StatusOr(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace qforge

// Propagate an error Status from an expression returning Status.
#define QF_RETURN_IF_ERROR(expr)              \
  do {                                        \
    ::qforge::Status qf_status_ = (expr);     \
    if (!qf_status_.ok()) return qf_status_;  \
  } while (0)

#define QF_CONCAT_INNER_(a, b) a##b
#define QF_CONCAT_(a, b) QF_CONCAT_INNER_(a, b)
// auto x = QF_TRY(expr returning StatusOr<T>) is not portable; use QF_ASSIGN_OR_RETURN(lhs, expr).
#define QF_ASSIGN_OR_RETURN(lhs, expr)                                  \
  auto QF_CONCAT_(qf_or_, __LINE__) = (expr);                           \
  if (!QF_CONCAT_(qf_or_, __LINE__).ok())                               \
    return QF_CONCAT_(qf_or_, __LINE__).status();                       \
  lhs = std::move(QF_CONCAT_(qf_or_, __LINE__)).value()
