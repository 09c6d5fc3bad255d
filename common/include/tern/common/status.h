// tern's one error model: Status (a code plus a message, empty on success) and Result<T>
// (a value or a non-OK Status), with TERN_CHECK to propagate failures.
//
// Conventions (shared by every layer):
//  - An error is described once, where it is first detected; callers add context only when they
//    know something the callee could not (which rank, which tensor), never by re-logging.
//  - Out-parameters are written only on success.
//  - Nothing in tern throws across a library boundary; constructors that can fail are factories
//    returning Result<T>.
//
// Thread safety: Status and Result are values; distinct objects may be used from distinct threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace tern {

/// What went wrong, coarse enough for a caller to branch on. Stable: the C ABI exposes it.
enum class StatusCode : std::uint8_t {
  kOk = 0,
  kInvalidArgument = 1,  ///< the caller passed something malformed (sizes, options, pointers)
  kCorruptData = 2,      ///< bytes from outside (a peer, a file) failed validation
  kNonFinite = 3,        ///< the input held NaN/Inf, or a conversion overflowed to Inf
  kOutOfRange = 4,       ///< a value or size exceeds what the format can represent
  kUnavailable = 5,      ///< hardware or a service is absent (no GPU, no RDMA device)
  kTimeout = 6,          ///< a deadline passed
  kPeerFailure = 7,      ///< a remote rank died, left or misbehaved
  kInternal = 8,         ///< a broken invariant inside tern: a bug
};

/// Human-readable name of a code ("invalid argument", ...).
std::string_view status_code_name(StatusCode code) noexcept;

class [[nodiscard]] Status {
 public:
  /// The OK status; cheap (no allocation).
  Status() noexcept = default;
  Status(StatusCode code, std::string message);

  static Status ok() noexcept { return Status(); }

  bool is_ok() const noexcept { return state_ == nullptr; }
  explicit operator bool() const noexcept { return is_ok(); }
  StatusCode code() const noexcept { return state_ ? state_->code : StatusCode::kOk; }
  /// The message alone ("" when OK).
  const std::string& message() const noexcept;
  /// "code name: message", or "ok".
  std::string to_string() const;

  /// Returns a copy whose message is prefixed with `context` ("context: message").
  Status with_context(std::string_view context) const;

 private:
  struct State {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const State> state_;  // null when OK; shared so copies are cheap
};

Status invalid_argument(std::string message);
Status corrupt_data(std::string message);
Status non_finite(std::string message);
Status out_of_range(std::string message);
Status unavailable(std::string message);
Status internal_error(std::string message);

/// A value of type T, or the Status saying why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (status_.is_ok()) status_ = internal_error("Result constructed from an OK Status without a value");
  }

  bool is_ok() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return is_ok(); }
  const Status& status() const noexcept { return status_; }

  /// Precondition: is_ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

namespace detail {
inline Status to_status(const Status& s) { return s; }
template <typename T>
Status to_status(const Result<T>& r) { return r.status(); }
}  // namespace detail

}  // namespace tern

#define TERN_INTERNAL_CONCAT2(a, b) a##b
#define TERN_INTERNAL_CONCAT(a, b) TERN_INTERNAL_CONCAT2(a, b)

/// Evaluates `expr` (a Status or Result<T>); if it failed, returns its Status from the enclosing
/// function (which must return Status or Result<U>).
#define TERN_CHECK(expr)                                                                    \
  do {                                                                                      \
    auto&& tern_check_value_ = (expr);                                                      \
    if (!tern_check_value_.is_ok()) return ::tern::detail::to_status(tern_check_value_);   \
  } while (0)

/// `TERN_ASSIGN_OR_RETURN(auto x, make_x());` binds the value of a Result or returns its Status.
#define TERN_ASSIGN_OR_RETURN(lhs, expr)                                        \
  auto TERN_INTERNAL_CONCAT(tern_result_, __LINE__) = (expr);                   \
  if (!TERN_INTERNAL_CONCAT(tern_result_, __LINE__).is_ok())                    \
    return TERN_INTERNAL_CONCAT(tern_result_, __LINE__).status();               \
  lhs = std::move(TERN_INTERNAL_CONCAT(tern_result_, __LINE__)).value()
