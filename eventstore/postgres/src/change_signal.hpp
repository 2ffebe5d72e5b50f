// Internal: the ChangeSignal of PostgreSQL subscriptions, woken by NOTIFY annals_events
// (ARCHITECTURE decision 6).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "annals/eventstore/event_store.hpp"

namespace annals::postgres::detail {

/// A ChangeSignal on a dedicated LISTEN connection (see change_signal.cpp). `warn_after`: warn
/// when a transaction older than this holds back the global log's readers (0: never).
/// Throws: the translated error when the LISTEN connection cannot be opened.
[[nodiscard]] std::unique_ptr<ChangeSignal> make_change_signal(
    std::string connection_string, std::chrono::milliseconds warn_after);

}  // namespace annals::postgres::detail
