#include "fault_load.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <random>

#include "annals/eventstore/error.hpp"

namespace annals::faults {
namespace {

using Clock = std::chrono::steady_clock;

void raise_to(std::atomic<std::int64_t>& longest, Clock::time_point since) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
  auto seen = longest.load();
  while (ms > seen && !longest.compare_exchange_weak(seen, ms)) {
  }
}

}  // namespace

struct WriteLoad::Writer {
  int index = 0;
  bool exact = false;  // appends with ExpectedVersion::exact, else any
  std::mt19937_64 rng;
  std::vector<StreamId> streams;
  std::map<std::string, StreamVersion> versions;  // known versions (exact writers)
  std::vector<AcknowledgedAppend> acknowledged;   // written by its thread only
  std::atomic<std::size_t> appends{0};
  std::thread thread;
};

WriteLoad::WriteLoad(EventStore& store, WriteLoadOptions options)
    : store_(store), options_(options) {
  std::mt19937_64 seeds(options_.seed);
  for (int w = 0; w < options_.writers; ++w) {
    auto writer = std::make_unique<Writer>();
    writer->index = w;
    writer->exact = w % 2 == 0;
    writer->rng.seed(seeds());
    for (int s = 0; s < options_.streams_per_writer; ++s) {
      writer->streams.emplace_back("acct-w" + std::to_string(w) + "s" + std::to_string(s));
    }
    writers_.push_back(std::move(writer));
  }
}

WriteLoad::~WriteLoad() { stop(); }

void WriteLoad::start() {
  for (auto& writer : writers_) {
    writer->thread = std::thread([this, w = writer.get()] { run(*w); });
  }
}

void WriteLoad::stop() {
  stop_ = true;
  for (auto& writer : writers_) {
    if (writer->thread.joinable()) writer->thread.join();
  }
}

std::size_t WriteLoad::slowest_writer_appends() const {
  std::size_t fewest = SIZE_MAX;
  for (const auto& writer : writers_) fewest = std::min(fewest, writer->appends.load());
  return writers_.empty() ? 0 : fewest;
}

std::chrono::milliseconds WriteLoad::longest_stall() const {
  return std::chrono::milliseconds(longest_stall_ms_.load());
}

std::chrono::milliseconds WriteLoad::longest_failed_attempt() const {
  return std::chrono::milliseconds(longest_failed_attempt_ms_.load());
}

std::vector<AcknowledgedAppend> WriteLoad::acknowledged() const {
  std::vector<AcknowledgedAppend> all;
  for (const auto& writer : writers_) {
    all.insert(all.end(), writer->acknowledged.begin(), writer->acknowledged.end());
  }
  return all;
}

std::vector<std::string> WriteLoad::errors() const {
  std::lock_guard lock(mutex_);
  return errors_;
}

void WriteLoad::run(Writer& writer) {
  std::size_t turn = 0;
  while (!stop_) {
    const auto& stream = writer.streams[turn++ % writer.streams.size()];
    const auto count =
        1 + writer.rng() % static_cast<std::uint64_t>(options_.max_events_per_append);
    std::vector<NewEvent> events;
    for (std::uint64_t i = 0; i < count; ++i) {
      events.push_back(NewEvent{
          .id = EventId::generate(),
          .type = "Deposited",
          .data = {{"amount", static_cast<std::int64_t>(writer.rng() % 1000)},
                   {"writer", writer.index}},
      });
    }
    try {
      auto acknowledged = append_until_acknowledged(writer, stream, std::move(events));
      writer.versions[stream.value()] = acknowledged.result.last_version;
      events_ += acknowledged.ids.size();
      writer.acknowledged.push_back(std::move(acknowledged));
      ++writer.appends;
      ++appends_;
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex_);
      errors_.push_back("writer " + std::to_string(writer.index) + ", " + stream.value() + ": " +
                        e.what());
      return;
    }
  }
}

// Sends the same append (same ids, same expected version) until the store acknowledges it.
// Throws what is not retryable.
AcknowledgedAppend WriteLoad::append_until_acknowledged(Writer& writer, const StreamId& stream,
                                                        std::vector<NewEvent> events) {
  std::vector<EventId> ids;
  for (const auto& e : events) ids.push_back(*e.id);
  std::optional<AppendResult> result;
  int failed_attempts = 0;
  bool outcome_was_unknown = false;
  const auto known = writer.versions.find(stream.value());
  const ExpectedVersion expected = !writer.exact ? ExpectedVersion::any()
                                   : known == writer.versions.end()
                                       ? ExpectedVersion::no_stream()
                                       : ExpectedVersion::exact(known->second);
  const auto first_attempt = Clock::now();
  auto backoff = options_.initial_backoff;
  while (true) {
    const auto attempt = Clock::now();
    try {
      result = store_.append(stream, expected, events);
      break;
    } catch (const OutcomeUnknownError&) {
      outcome_was_unknown = true;
      ++outcome_unknown_;
    } catch (const UnavailableError&) {
    }
    raise_to(longest_failed_attempt_ms_, attempt);
    ++failed_attempts;
    ++retries_;
    std::this_thread::sleep_for(backoff);  // pacing the retries, not waiting for an event
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  // The stall includes the store's own retries on a fresh connection, which the writer
  // never sees as errors.
  raise_to(longest_stall_ms_, first_attempt);
  return AcknowledgedAppend{.stream = stream,
                            .ids = std::move(ids),
                            .result = std::move(*result),
                            .failed_attempts = failed_attempts,
                            .outcome_was_unknown = outcome_was_unknown};
}

}  // namespace annals::faults
