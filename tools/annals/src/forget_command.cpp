#include "forget_command.hpp"

#include <functional>
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

// What opens personal data in an event: the subject keys and a PersonalData over them.
struct Revealing {
  Revealing(EventStore& store, std::unique_ptr<SubjectKeyStore> key_store,
            std::optional<MasterKey> master)
      : keys(std::move(key_store)), personal(*keys, store, {.master_key = std::move(master)}) {}

  // Opens the envelopes of `event` in place; leaves it as stored when one cannot be opened, with
  // a warning (the CLI prints, never refuses).
  void reveal(RecordedEvent& event) {
    try {
      if (auto revealed = personal.reveal(event)) event.data = std::move(*revealed);
    } catch (const Error& e) {
      if (auto log = spdlog::get("annals")) log->warn("personal data left encrypted: {}", e.what());
    }
  }

  std::unique_ptr<SubjectKeyStore> keys;
  PersonalData personal;
};

// The keys of the store at `url`; nullptr when they cannot be read: no key table (an older
// schema), a role without access to keys (reader, auditor), or a bad master key (warned).
std::unique_ptr<Revealing> open_revealing(EventStore& store, const std::string& url) {
  try {
    auto master = MasterKey::from_environment();
    postgres::PostgresSubjectKeyStoreOptions options;
    options.connection_string = url;
    options.pool_size = 1;
    return std::make_unique<Revealing>(
        store, postgres::make_postgres_subject_key_store(std::move(options)), std::move(master));
  } catch (const NotFoundError&) {
    return nullptr;
  } catch (const PermissionDeniedError&) {
    return nullptr;
  } catch (const InvalidArgumentError& e) {
    if (auto log = spdlog::get("annals")) log->warn("personal data left encrypted: {}", e.what());
    return nullptr;
  }
}

// Opens personal data in the events it returns (PersonalData::reveal).
class RevealingReader final : public EventReader {
 public:
  RevealingReader(std::unique_ptr<EventStore> store, std::unique_ptr<Revealing> revealing)
      : store_(std::move(store)), revealing_(std::move(revealing)) {}

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
    for (auto& event : events) revealing_->reveal(event);
    return events;
  }

  std::unique_ptr<EventStore> store_;
  std::unique_ptr<Revealing> revealing_;
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
  // The store outlives the Revealing: both go into the reader, the store first.
  auto revealing = open_revealing(*store, url);
  if (!revealing) return store;  // envelopes print as stored
  return std::make_unique<RevealingReader>(std::move(store), std::move(revealing));
}

std::function<void(RecordedEvent&)> personal_data_revealer(EventStore& store,
                                                           const std::string& url) {
  std::shared_ptr<Revealing> revealing = open_revealing(store, url);
  if (!revealing) return nullptr;
  return [revealing](RecordedEvent& event) { revealing->reveal(event); };
}

}  // namespace annals::cli
