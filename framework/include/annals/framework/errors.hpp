// Errors the framework adds to the annals taxonomy (annals/eventstore/error.hpp). They stay
// within the closed ErrorCode set: each derives from one of the store's error classes.
//
// Thread safety: error objects are immutable values.
#pragma once

#include <cstdint>
#include <string>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"

namespace annals {

/// A stored event this program cannot turn into a C++ type: its type name is not registered
/// and has no upcaster, or it is stored at a schema version the program has no path from (for
/// example a newer release wrote it). Code kNotFound; never retried. Tools can still read the
/// event raw with EventStore::read_stream.
class UnknownEventTypeError : public NotFoundError {
 public:
  UnknownEventTypeError(std::string type, std::int32_t schema_version, std::string stream,
                        StreamVersion version, const std::string& why);

  /// The stored type name (or, after upcasting, the name the upcaster produced).
  [[nodiscard]] const std::string& type() const noexcept { return type_; }
  [[nodiscard]] std::int32_t schema_version() const noexcept { return schema_version_; }
  /// The stream and version of the stored event.
  [[nodiscard]] const std::string& stream() const noexcept { return stream_; }
  [[nodiscard]] StreamVersion version() const noexcept { return version_; }

 private:
  std::string type_;
  std::int32_t schema_version_;
  std::string stream_;
  StreamVersion version_;
};

}  // namespace annals
