// `annals forget SUBJECT`: crypto-shredding from the command line (docs/personal-data.md,
// docs/cli.md), and the decryption of personal data in `read` and `read-all` output.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>

#include "annals/eventstore/event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/eventstore/subject_key_store.hpp"

namespace annals::cli {

/// Arguments of `annals forget SUBJECT [--json]`.
struct ForgetArgs {
  std::string subject{};
  bool json = false;
};

/// Destroys the keys of `args.subject` in `keys` and appends SubjectForgotten to `store`
/// (annals::PersonalData::forget), then prints one line: text, or with `json` the object
/// {"subject":..,"keys_destroyed":N,"key_ids":[..],"stream":..,"version":N,"position":".."}.
/// Forgetting twice prints keys_destroyed 0 and the first event's stream, version, position.
/// The master key, when keys are stored wrapped, comes from ANNALS_MASTER_KEY_FILE or
/// ANNALS_MASTER_KEY (forgetting itself does not need it).
/// Throws: InvalidArgumentError (bad subject, bad master key), the stores' errors.
/// With `snapshots`, the snapshot of the stream named like the subject is removed too
/// ("snapshot_removed" in the JSON).
void forget(EventStore& store, SubjectKeyStore& keys, SnapshotStore* snapshots,
            const ForgetArgs& args, std::ostream& out);

/// `store` as a reader whose events come back with their personal data opened, or redacted
/// once forgotten, when the key table at `url` can be reached (read and read-all); otherwise
/// (no table, no privilege on it, a bad master key) `store` itself, whose events print with
/// their envelopes. An event whose envelope does not open prints as stored, and a warning goes
/// to the log.
/// Throws: what opening the key store throws besides NotFoundError and PermissionDeniedError.
[[nodiscard]] std::unique_ptr<EventReader> revealing_reader(std::unique_ptr<EventStore> store,
                                                            const std::string& url);

/// A function that opens the personal data of an event in place, as revealing_reader() does,
/// for events that do not come through a reader (a live tail's subscription); empty when the
/// keys cannot be read (then events print as stored). `store` must outlive it.
[[nodiscard]] std::function<void(RecordedEvent&)> personal_data_revealer(EventStore& store,
                                                                         const std::string& url);

}  // namespace annals::cli
