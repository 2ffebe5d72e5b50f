#include "projection_commands.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ostream>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "exit_code.hpp"
#include "json_output.hpp"

namespace annals::cli {
namespace {

using projections::DeadLetter;
using projections::DeadLetterState;
using projections::ProjectionRecord;
using projections::ProjectionStore;
using projections::RebuildRequest;
using projections::RebuildState;
using Json = nlohmann::ordered_json;

std::string dump(const Json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Table cells are one line each: an error message may span several.
std::string one_line(const std::string& text) {
  std::string out;
  for (const char c : text) out.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  return out;
}

// Plain left-aligned columns separated by two spaces; the last column is not padded.
void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << '\n';
  }
}

// Events between the checkpoint and the head: the difference of the global sequence numbers
// (approximate, as ProjectionStatus::lag_events is; never negative).
std::int64_t lag_of(Position checkpoint, Position head) {
  return std::max<std::int64_t>(head.sequence() - checkpoint.sequence(), 0);
}

// "-" when nobody ever held the lease, "expired ..." when it lapsed, else the expiry.
std::string lease_cell(const ProjectionRecord& record) {
  if (!record.lease_expires_at) return "-";
  const auto when = format_timestamp(*record.lease_expires_at);
  return record.owned ? when : "expired " + when;
}

Json optional_string(const std::optional<std::string>& value) {
  return value ? Json(*value) : Json(nullptr);
}

struct RebuildProgress {
  std::int64_t done = 0;
  std::int64_t total = 0;
  int percent = 0;
};

// How far a rebuild is, from the target and progress positions the owner reports (events
// counted by sequence numbers, like the lag). Empty until the owner set a target.
std::optional<RebuildProgress> progress_of(const RebuildRequest& request) {
  if (!request.target) return std::nullopt;
  RebuildProgress p;
  p.total = std::max<std::int64_t>(request.target->sequence(), 0);
  p.done = request.state == RebuildState::kDone
               ? p.total
               : std::clamp<std::int64_t>(request.progress ? request.progress->sequence() : 0, 0,
                                          p.total);
  p.percent = p.total == 0 ? 100 : static_cast<int>(p.done * 100 / p.total);
  return p;
}

Json rebuild_json(const RebuildRequest& request) {
  Json j;
  j["id"] = request.id;
  j["state"] = projections::to_string(request.state);
  j["target"] = request.target ? Json(request.target->to_string()) : Json(nullptr);
  j["progress"] = request.progress ? Json(request.progress->to_string()) : Json(nullptr);
  const auto p = progress_of(request);
  j["percent"] = p ? Json(p->percent) : Json(nullptr);
  j["message"] = optional_string(request.message);
  j["requested_at"] = format_timestamp(request.requested_at);
  return j;
}

std::size_t count_dead_letters(ProjectionStore& store, const std::string& projection,
                               DeadLetterState state) {
  projections::DeadLetterQuery query;
  query.projection = projection;
  query.state = state;
  return store.list_dead_letters(query).size();
}

std::optional<ProjectionRecord> find_projection(ProjectionStore& store, const std::string& name) {
  for (auto& record : store.list()) {
    if (record.name == name) return std::move(record);
  }
  return std::nullopt;
}

std::string unknown_projection(const std::string& name) {
  return "no projection named '" + name +
         "' (`annals projections list` shows the registered ones; a projection is registered "
         "when a runner first runs it)";
}

}  // namespace

void projections_status(ProjectionStore& store, EventReader& events,
                        const ProjectionStatusArgs& args, std::ostream& out) {
  auto records = store.list();
  if (args.name) {
    std::erase_if(records, [&](const ProjectionRecord& r) { return r.name != *args.name; });
    if (records.empty()) throw ExitError(ExitCode::kNotFound, unknown_projection(*args.name));
  }
  const auto head = events.head_position();

  struct Extra {
    std::optional<RebuildRequest> rebuild;
    std::size_t parked = 0;
    std::size_t retry_requested = 0;
  };
  std::vector<Extra> extras(records.size());
  if (args.detailed) {
    for (std::size_t i = 0; i < records.size(); ++i) {
      extras[i].rebuild = store.open_rebuild(records[i].name);
      extras[i].parked = count_dead_letters(store, records[i].name, DeadLetterState::kParked);
      extras[i].retry_requested =
          count_dead_letters(store, records[i].name, DeadLetterState::kRetryRequested);
    }
  }

  if (args.json) {
    for (std::size_t i = 0; i < records.size(); ++i) {
      const auto& r = records[i];
      Json j;
      j["name"] = r.name;
      j["owner"] = optional_string(r.owner);
      j["owned"] = r.owned;
      j["position"] = r.checkpoint.to_string();
      j["head"] = head.to_string();
      j["lag"] = lag_of(r.checkpoint, head);
      j["state"] = r.state;
      j["lease_expires_at"] =
          r.lease_expires_at ? Json(format_timestamp(*r.lease_expires_at)) : Json(nullptr);
      if (args.detailed) {
        j["fencing_token"] = r.fencing_token;
        j["events_applied"] = r.events_applied;
        j["last_error"] = optional_string(r.last_error);
        j["updated_at"] = format_timestamp(r.updated_at);
        j["rebuild"] = extras[i].rebuild ? rebuild_json(*extras[i].rebuild) : Json(nullptr);
        j["dead_letters"] = {{"parked", extras[i].parked},
                             {"retry_requested", extras[i].retry_requested}};
      }
      out << dump(j) << '\n';
    }
    return;
  }

  if (records.empty()) {
    out << "no projections registered (a runner registers its projections when it starts)\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header{"NAME", "OWNER", "POSITION", "LAG", "STATE", "LEASE EXPIRES"};
  if (args.detailed) {
    header.insert(header.end(), {"TOKEN", "APPLIED"});
  }
  rows.push_back(header);
  for (const auto& r : records) {
    std::vector<std::string> row{r.name,
                                 r.owner.value_or("-"),
                                 r.checkpoint.to_string(),
                                 std::to_string(lag_of(r.checkpoint, head)),
                                 r.state.empty() ? "-" : r.state,
                                 lease_cell(r)};
    if (args.detailed) {
      row.push_back(std::to_string(r.fencing_token));
      row.push_back(std::to_string(r.events_applied));
    }
    rows.push_back(std::move(row));
  }
  print_table(rows, out);
  if (!args.detailed) return;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& name = records[i].name;
    if (records[i].last_error) {
      out << name << ": last error: " << one_line(*records[i].last_error) << '\n';
    }
    if (const auto& rebuild = extras[i].rebuild) {
      out << name << ": rebuild " << rebuild->id << ' ' << projections::to_string(rebuild->state);
      if (const auto p = progress_of(*rebuild)) {
        out << ' ' << p->percent << "% (" << p->done << " of " << p->total << " events)";
      }
      out << '\n';
    }
    if (extras[i].parked + extras[i].retry_requested > 0) {
      out << name << ": dead letters: " << extras[i].parked << " parked, "
          << extras[i].retry_requested << " retry requested (`annals dead-letters list "
          << "--projection " << name << "`)\n";
    }
  }
}

void projections_rebuild(ProjectionStore& store, const RebuildArgs& args, std::ostream& out) {
  if (args.timeout_seconds &&
      (!std::isfinite(*args.timeout_seconds) || *args.timeout_seconds <= 0)) {
    throw InvalidArgumentError("--timeout must be a number of seconds > 0");
  }
  const auto started = std::chrono::steady_clock::now();
  // No --timeout: a deadline that never comes (a plain time point, not an optional, which
  // g++ 12 -O3 reports as maybe-uninitialized).
  const auto deadline =
      args.timeout_seconds
          ? started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                          std::chrono::duration<double>(*args.timeout_seconds))
          : std::chrono::steady_clock::time_point::max();
  const std::string label = "rebuild " + args.name + ": ";

  RebuildRequest request;
  try {
    request = store.request_rebuild(args.name);
  } catch (const NotFoundError&) {
    throw ExitError(ExitCode::kNotFound, unknown_projection(args.name));
  }
  out << label << "request " << request.id << ' ' << projections::to_string(request.state) << '\n'
      << std::flush;

  // The state the owner is in matters only while the request waits for one.
  bool said_unowned = false;
  bool said_owner = false;
  const auto check_owner = [&] {
    const auto record = find_projection(store, args.name);
    if (record && record->owned) {
      if (!said_owner) {
        out << label << "owned by " << record->owner.value_or("?")
            << "; waiting for it to start the rebuild\n"
            << std::flush;
        said_owner = true;
      }
    } else if (!said_unowned) {
      out << label << "no runner owns " << args.name
          << " at the moment: the request waits until a runner running it takes it over\n"
          << std::flush;
      said_unowned = true;
      said_owner = false;
    }
  };
  if (args.no_wait) {
    if (request.state == RebuildState::kRequested) check_owner();
    return;
  }

  int last_percent = -1;
  bool bar_drawn = false;
  bool said_running = false;
  const auto end_bar = [&] {
    if (bar_drawn) out << '\n';
    bar_drawn = false;
  };
  while (true) {
    const auto current = store.rebuild_request(request.id);
    if (!current) {
      end_bar();
      throw ExitError(ExitCode::kError, "rebuild request " + std::to_string(request.id) + " of " +
                                            args.name + " disappeared from the store");
    }
    switch (current->state) {
      case RebuildState::kRequested:
        check_owner();
        break;
      case RebuildState::kRunning: {
        if (!said_running) {
          const auto record = find_projection(store, args.name);
          out << label << "running"
              << (record && record->owner ? " on " + *record->owner : std::string()) << '\n'
              << std::flush;
          said_running = true;
        }
        const auto p = progress_of(*current);
        if (!p || p->percent == last_percent) break;
        last_percent = p->percent;
        if (args.terminal) {
          constexpr int kWidth = 30;
          const int filled = p->percent * kWidth / 100;
          out << '\r' << label << '[' << std::string(static_cast<std::size_t>(filled), '#')
              << std::string(static_cast<std::size_t>(kWidth - filled), '.') << "] " << p->percent
              << "% (" << p->done << " of " << p->total << " events)" << std::flush;
          bar_drawn = true;
        } else {
          out << label << p->percent << "% (" << p->done << " of " << p->total << " events)\n"
              << std::flush;
        }
        break;
      }
      case RebuildState::kDone: {
        end_bar();
        const auto p = progress_of(*current);
        out << label << "done";
        if (p) out << " (" << p->total << " events)";
        out << '\n' << std::flush;
        return;
      }
      case RebuildState::kFailed:
        end_bar();
        throw ExitError(ExitCode::kError,
                        "rebuild of " + args.name +
                            " failed: " + one_line(current->message.value_or("no reason given")));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      end_bar();
      throw ExitError(ExitCode::kTimeout,
                      "rebuild of " + args.name + " not finished after --timeout (request " +
                          std::to_string(request.id) + " is " +
                          projections::to_string(current->state) +
                          "); it goes on: run the same command again to follow it");
    }
    std::this_thread::sleep_for(args.poll_interval);
  }
}

void dead_letters_list(ProjectionStore& store, const DeadLetterListArgs& args, std::ostream& out) {
  projections::DeadLetterQuery query;
  if (args.projection) {
    if (args.projection->empty()) throw InvalidArgumentError("--projection must not be empty");
    query.projection = *args.projection;
  }
  if (args.state) query.state = projections::parse_dead_letter_state(*args.state);
  const auto letters = store.list_dead_letters(query);

  if (args.json) {
    for (const auto& d : letters) {
      Json j;
      j["id"] = d.id;
      j["projection"] = d.projection;
      j["state"] = projections::to_string(d.state);
      j["attempts"] = d.attempts;
      j["stream"] = d.event.stream_id.value();
      j["version"] = d.event.version;
      j["position"] = d.event.position.to_string();
      j["event_id"] = d.event.id.to_string();
      j["type"] = d.event.type;
      j["error"] = d.error;
      j["parked_at"] = format_timestamp(d.parked_at);
      j["updated_at"] = format_timestamp(d.updated_at);
      out << dump(j) << '\n';
    }
    return;
  }
  if (letters.empty()) {
    out << "no dead letters\n";
    return;
  }
  std::vector<std::vector<std::string>> rows{
      {"ID", "PROJECTION", "STATE", "ATTEMPTS", "STREAM", "VERSION", "TYPE", "PARKED AT", "ERROR"}};
  for (const auto& d : letters) {
    rows.push_back({std::to_string(d.id), d.projection, projections::to_string(d.state),
                    std::to_string(d.attempts), d.event.stream_id.value(),
                    std::to_string(d.event.version), d.event.type, format_timestamp(d.parked_at),
                    one_line(d.error)});
  }
  print_table(rows, out);
}

std::int64_t parse_dead_letter_id(const std::string& text) {
  std::int64_t id = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, id);
  if (text.empty() || ec != std::errc() || ptr != end || id < 1) {
    throw InvalidArgumentError(
        "ID must be a dead-letter id (an integer >= 1, the `id` column of "
        "`annals dead-letters list`), got '" +
        text + "'");
  }
  return id;
}

void dead_letters_retry(ProjectionStore& store, std::int64_t id, std::ostream& out) {
  try {
    store.request_retry(id);
  } catch (const NotFoundError&) {
    throw ExitError(ExitCode::kNotFound, "no dead letter with id " + std::to_string(id));
  }
  out << "dead letter " << id
      << ": retry requested; the projection's owning runner applies it again "
         "(follow with `annals dead-letters list`)\n";
}

void dead_letters_skip(ProjectionStore& store, std::int64_t id, std::ostream& out) {
  try {
    store.skip(id);
  } catch (const NotFoundError&) {
    throw ExitError(ExitCode::kNotFound, "no dead letter with id " + std::to_string(id));
  }
  out << "dead letter " << id << ": skipped\n";
}

}  // namespace annals::cli
