#include "fault_checks.hpp"

#include <algorithm>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <pqxx/pqxx>

namespace annals::faults {
namespace {

using namespace std::chrono_literals;

std::vector<RecordedEvent> whole_log(EventReader& store) {
  std::vector<RecordedEvent> log;
  ReadAllOptions options;
  options.max_count = 5000;
  while (true) {
    auto page = store.read_all(options);
    if (page.empty()) return log;
    options.after = page.back().position;
    log.insert(log.end(), std::make_move_iterator(page.begin()),
               std::make_move_iterator(page.end()));
  }
}

struct IdHash {
  std::size_t operator()(const EventId& id) const noexcept {
    return std::hash<std::string>()(id.to_string());
  }
};

void note(LogCheck& check, const std::string& problem) {
  if (check.problems.size() < 10) check.problems.push_back(problem);
}

// Counts every stored id; ids stored more than once are duplicates.
std::unordered_map<EventId, const RecordedEvent*, IdHash> index_log(
    const std::vector<RecordedEvent>& log, LogCheck& check) {
  std::unordered_map<EventId, const RecordedEvent*, IdHash> stored;
  for (const auto& e : log) {
    if (!stored.emplace(e.id, &e).second) {
      ++check.duplicated;
      note(check, "event " + e.id.to_string() + " stored twice");
    }
  }
  return stored;
}

// True when the append's events are stored where its result says.
bool check_append(const AcknowledgedAppend& append,
                  const std::unordered_map<EventId, const RecordedEvent*, IdHash>& stored,
                  LogCheck& check) {
  bool right = true;
  for (std::size_t i = 0; i < append.ids.size(); ++i) {
    const auto found = stored.find(append.ids[i]);
    if (found == stored.end()) {
      ++check.lost;
      note(check, "acknowledged event " + append.ids[i].to_string() + " of " +
                      append.stream.value() + " is not stored");
      right = false;
      continue;
    }
    const auto& e = *found->second;
    const bool last = i + 1 == append.ids.size();
    if (e.stream_id != append.stream ||
        e.version != append.result.first_version + static_cast<std::int64_t>(i) ||
        (last &&
         (e.position != append.result.position || e.version != append.result.last_version))) {
      note(check, "event " + e.id.to_string() + " stored in " + e.stream_id.value() + " at v" +
                      std::to_string(e.version) + ", " + e.position.to_string() +
                      "; the append's result said " + append.result.stream_id.value() + " v" +
                      std::to_string(append.result.first_version) + "..v" +
                      std::to_string(append.result.last_version) + ", " +
                      append.result.position.to_string());
      right = false;
    }
  }
  return right;
}

void check_versions(const std::vector<RecordedEvent>& log, LogCheck& check) {
  std::map<std::string, std::int64_t> last;
  std::map<std::string, bool> gapped;
  for (const auto& e : log) {
    auto& version = last[e.stream_id.value()];
    if (e.version != version + 1 && !gapped[e.stream_id.value()]) {
      gapped[e.stream_id.value()] = true;
      ++check.gapped_streams;
      note(check, e.stream_id.value() + ": version " + std::to_string(e.version) + " after " +
                      std::to_string(version));
    }
    version = e.version;
  }
}

}  // namespace

std::vector<RecordedEvent> log_through(EventReader& store, Position last,
                                       std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto log = whole_log(store);
    if (!log.empty() && log.back().position >= last) return log;
    if (std::chrono::steady_clock::now() >= deadline) {
      throw std::runtime_error("the log did not settle up to " + last.to_string());
    }
    std::this_thread::sleep_for(50ms);  // polling period
  }
}

LogCheck check_log(const std::vector<RecordedEvent>& log,
                   const std::vector<AcknowledgedAppend>& acknowledged) {
  LogCheck check;
  check.stored_events = log.size();
  const auto stored = index_log(log, check);
  std::size_t acknowledged_ids = 0;
  for (const auto& append : acknowledged) {
    acknowledged_ids += append.ids.size();
    const bool right = check_append(append, stored, check);
    if (!right) ++check.wrong_results;
    if (append.outcome_was_unknown) {
      ++check.outcome_unknown;
      if (right) ++check.outcome_unknown_resolved;
    }
  }
  check.acknowledged_events = acknowledged_ids;
  // Stored events no writer was told about (every writer retried until acknowledged).
  const std::size_t distinct = stored.size();
  if (distinct > acknowledged_ids - std::min(acknowledged_ids, check.lost)) {
    const auto extra = distinct - (acknowledged_ids - check.lost);
    check.duplicated += extra;
    note(check, std::to_string(extra) + " stored events that no append acknowledged");
  }
  check_versions(log, check);
  return check;
}

DeliveryCheck check_deliveries(const std::vector<RecordedEvent>& log,
                               const std::vector<Delivered>& delivered) {
  DeliveryCheck check;
  check.delivered = delivered.size();
  std::unordered_map<EventId, int, IdHash> times;
  for (const auto& d : delivered) ++times[d.id];
  for (const auto& e : log) {
    const auto found = times.find(e.id);
    if (found == times.end()) {
      ++check.missing;
    } else if (found->second > 1) {
      check.repeated += static_cast<std::size_t>(found->second - 1);
    }
  }
  check.in_log_order =
      delivered.size() == log.size() &&
      std::equal(log.begin(), log.end(), delivered.begin(), [](const auto& e, const auto& d) {
        return e.id == d.id && e.position == d.position;
      });
  return check;
}

std::ostream& operator<<(std::ostream& os, const SumsModel& model) {
  os << "{events " << model.events << ", hash " << model.hash << ", " << model.streams.size()
     << " streams";
  for (const auto& [stream, row] : model.streams) {
    os << ", " << stream << ": " << row.events << "/" << row.total << "/" << row.last_version;
  }
  return os << "}";
}

SumsModel fold(const std::vector<RecordedEvent>& log) {
  SumsModel model;
  for (const auto& e : log) {
    auto& row = model.streams[e.stream_id.value()];
    row.events += 1;
    row.total += e.data.value("amount", std::int64_t{0});
    row.last_version = std::max(row.last_version, e.version);
    model.events += 1;
    model.hash = (model.hash * 1000003 + e.position.sequence()) % 2147483647;
  }
  return model;
}

StoredSums read_sums(const std::string& url) {
  pqxx::connection c(url);
  // One snapshot: a batch committing between two reads would show a model no replay makes.
  pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(c);
  StoredSums out;
  const auto checkpoint = tx.exec(
      "SELECT checkpoint_tx::text, checkpoint_position FROM annals.projections"
      " WHERE name = 'sums'");
  if (checkpoint.empty()) return out;
  out.checkpoint =
      Position(checkpoint[0][0].as<std::uint64_t>(), checkpoint[0][1].as<std::int64_t>());
  for (const auto& row : tx.exec("SELECT stream, events, total, last_version FROM sums_streams")) {
    out.model.streams[row[0].as<std::string>()] = {
        row[1].as<std::int64_t>(), row[2].as<std::int64_t>(), row[3].as<std::int64_t>()};
  }
  const auto digest = tx.exec("SELECT events, hash FROM sums_digest WHERE id = 1");
  if (!digest.empty()) {
    out.model.events = digest[0][0].as<std::int64_t>();
    out.model.hash = digest[0][1].as<std::int64_t>();
  }
  return out;
}

std::string with_commas(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  for (auto i = static_cast<std::ptrdiff_t>(digits.size()) - 3; i > 0; i -= 3) {
    digits.insert(static_cast<std::size_t>(i), ",");
  }
  return n < 0 ? "-" + digits : digits;
}

}  // namespace annals::faults
