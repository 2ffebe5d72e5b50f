// Helpers shared by the contract suites (the event and snapshot stores' here, the projection
// store's in annals::testkit_projections): unique names and exact-error capture. Header-only;
// needs GoogleTest.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <random>
#include <string>
#include <typeinfo>
#include <utility>

#include <gtest/gtest.h>

namespace annals::testkit::contract_detail {

/// `count` random lower-case hex digits (for unique categories, stream ids and names).
inline std::string random_hex(std::size_t count) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out.push_back(kDigits[rng() % 16]);
  return out;
}

/// Runs `call` and returns the error of type E it threw; empty when it threw nothing. Another
/// exception type is reported as a test failure (and also yields empty).
template <typename E, typename F>
std::optional<E> catch_error(F&& call) {
  try {
    std::forward<F>(call)();
  } catch (const E& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected " << typeid(E).name() << ", but " << typeid(e).name()
                  << " was thrown: " << e.what();
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace annals::testkit::contract_detail
