// Answering a re-sent command from the store when the aggregate's recent-commands ring does not
// know it (ARCHITECTURE decision 4). Internal to annals::framework (Repository, CommandBus);
// not part of the public API.
#pragma once

#include <optional>
#include <string>

#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/types.hpp"

namespace annals::detail {

/// The original result of command `command_id` on `stream` if its first event is stored there
/// (a re-send), else empty. One probe append that cannot write (expected "no stream" on a
/// stream that exists; the store answers re-sends before checking versions), plus a read; one
/// more round trip to check that the stream exists unless the caller knows it does.
/// Throws: UnavailableError.
std::optional<AppendResult> find_original_result(EventStore& store, const StreamId& stream,
                                                 const std::string& command_id,
                                                 bool stream_exists = false);

/// The whole original result of command `command_id`, given the store's answer for a re-send
/// of some first events of it (the re-decided command may have produced fewer events).
/// Throws: UnavailableError. Cost: one read per 256 events of the command.
AppendResult complete_original_result(EventStore& store, const AppendResult& partial,
                                      const std::string& command_id);

/// Refuses a reused command id: when `fingerprint` is set and the first event of `original`
/// (the stored result of command `command_id`) records another fingerprint, throws
/// IdempotencyError naming the command id, stream and version. Events without a fingerprint
/// (older, or of a command type without one) are taken as the same command.
/// Throws: IdempotencyError, UnavailableError. Cost: one read of one event when `fingerprint`
/// is set.
void check_same_command(EventStore& store, const AppendResult& original,
                        const std::string& command_id, const std::string& fingerprint);

}  // namespace annals::detail
