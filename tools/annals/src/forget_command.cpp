#include "forget_command.hpp"

#include <optional>
#include <ostream>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/framework/personal_data.hpp"
#include "annals/postgres/postgres_subject_key_store.hpp"

namespace annals::cli {
namespace {

// Opens personal data in the events it returns (PersonalData::reveal); leaves an event as
// stored when its envelope cannot be opened, with a warning (the CLI prints, never refuses).
class RevealingReader final : public EventReader {
 public:
  RevealingReader(std::unique_ptr<EventStore> store, std::unique_ptr<SubjectKeyStore> keys,
                  std::optional<MasterKey> master)
      : store_(std::move(store)),
        keys_(std::move(keys)),
        personal_(*keys_, *store_, {.master_key = std::move(master)}) {}

  std::vector<RecordedEvent> read_stream(const StreamId& stream,
                                         const ReadStreamOptions& options) override {
    return reveal_all(store_->read_stream(stream, options));
  }
  std::vector<RecordedEvent> read_all(const ReadAllOptions& options) override {
    return reveal_all(store_->read_all(options));
  }
  std::optional<StreamVersion> stream_version(const StreamId& stream) override {
    return store_->stream_version(stream);
  }
  Position head_position() override { return store_->head_position(); }
  StreamState stream_state(const StreamId& stream) override { return store_->stream_state(stream); }

 private:
  std::vector<RecordedEvent> reveal_all(std::vector<RecordedEvent> events) {
    for (auto& event : events) {
      try {
        if (auto revealed = personal_.reveal(event)) event.data = std::move(*revealed);
      } catch (const Error& e) {
        if (auto log = spdlog::get("annals")) {
          log->warn("personal data left encrypted: {}", e.what());
        }
      }
    }
    return events;
  }

  std::unique_ptr<EventStore> store_;
  std::unique_ptr<SubjectKeyStore> keys_;
  PersonalData personal_;
};

}  // namespace

void forget(EventStore& store, SubjectKeyStore& keys, SnapshotStore* snapshots,
            const ForgetArgs& args, std::ostream& out) {
  validate_subject(args.subject);
  PersonalData personal(keys, store,
                        {.master_key = MasterKey::from_environment(), .snapshots = snapshots});
  const auto result = personal.forget(args.subject);
  if (args.json) {
    out << nlohmann::json{{"subject", result.subject},
                          {"keys_destroyed", result.keys_destroyed},
                          {"key_ids", result.key_ids},
                          {"stream", result.event.stream_id.value()},
                          {"version", result.event.last_version},
                          {"position", result.event.position.to_string()},
                          {"snapshot_removed", result.snapshot_removed}}
               .dump()
        << '\n';
    return;
  }
  out << "forgot subject " << nlohmann::json(result.subject).dump() << ": " << result.keys_destroyed
      << " key(s) destroyed now, " << result.key_ids.size()
      << " in all; SubjectForgotten is version " << result.event.last_version << " of stream "
      << nlohmann::json(result.event.stream_id.value()).dump() << '\n';
}

std::unique_ptr<EventReader> revealing_reader(std::unique_ptr<EventStore> store,
                                              const std::string& url) {
  std::unique_ptr<SubjectKeyStore> keys;
  std::optional<MasterKey> master;
  try {
    master = MasterKey::from_environment();
    postgres::PostgresSubjectKeyStoreOptions options;
    options.connection_string = url;
    options.pool_size = 1;
    keys = postgres::make_postgres_subject_key_store(std::move(options));
  } catch (const NotFoundError&) {
    return store;  // no key table (an older schema): envelopes print as stored
  } catch (const PermissionDeniedError&) {
    return store;  // a role without access to keys (reader, auditor)
  } catch (const InvalidArgumentError& e) {
    if (auto log = spdlog::get("annals")) log->warn("personal data left encrypted: {}", e.what());
    return store;
  }
  return std::make_unique<RevealingReader>(std::move(store), std::move(keys), std::move(master));
}

}  // namespace annals::cli
