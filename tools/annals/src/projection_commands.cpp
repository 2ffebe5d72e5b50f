#include "projection_commands.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <ostream>
#include <set>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/projections/partitions.hpp"
#include "exit_code.hpp"
#include "json_output.hpp"
#include "text_table.hpp"

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

// What `status` adds to a projection's record: its open rebuild and its dead-letter counts.
struct ProjectionDetails {
  std::optional<RebuildRequest> rebuild;
  std::size_t parked = 0;
  std::size_t retry_requested = 0;
};

// The partitioned projection a row belongs to (a partition or a runner seat), if any.
std::optional<std::string> partitioned_of(const std::string& row) {
  if (const auto part = projections::parse_partition_name(row)) return part->projection;
  return projections::parse_seat_name(row);
}

// The projections to print: all, or the one named (ExitError kNotFound when there is none),
// with its partitions and runner seats when it is partitioned.
std::vector<ProjectionRecord> select_projections(ProjectionStore& store,
                                                 const ProjectionStatusArgs& args) {
  auto records = store.list();
  if (args.name) {
    std::erase_if(records, [&](const ProjectionRecord& r) {
      return r.name != *args.name && partitioned_of(r.name) != *args.name;
    });
    if (records.empty()) throw ExitError(ExitCode::kNotFound, unknown_projection(*args.name));
  }
  return records;
}

// One ProjectionDetails per record when args.detailed, else empty ones (nothing is read).
std::vector<ProjectionDetails> details_of(ProjectionStore& store,
                                          const std::vector<ProjectionRecord>& records,
                                          const ProjectionStatusArgs& args) {
  std::vector<ProjectionDetails> details(records.size());
  if (!args.detailed) return details;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& name = records[i].name;
    details[i].rebuild = store.open_rebuild(name);
    details[i].parked = count_dead_letters(store, name, DeadLetterState::kParked);
    details[i].retry_requested = count_dead_letters(store, name, DeadLetterState::kRetryRequested);
  }
  return details;
}

// "<name>" for a blue/green generation "<name>.g<n>" (n digits), else empty.
std::optional<std::string> generation_of(const std::string& name) {
  const auto at = name.rfind(".g");
  if (at == std::string::npos || at == 0 || at + 2 == name.size()) return std::nullopt;
  for (std::size_t i = at + 2; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
  }
  return name.substr(0, at);
}

// The projections among `records` that are partitioned (some row is one of their partitions).
std::set<std::string> partitioned_projections(const std::vector<ProjectionRecord>& records) {
  std::set<std::string> out;
  for (const auto& r : records) {
    if (const auto part = projections::parse_partition_name(r.name)) out.insert(part->projection);
  }
  return out;
}

// Rows that apply no events, so that their checkpoint means nothing: a runner seat, and the
// own row of a partitioned projection (its partitions carry the progress). Their lag is not
// shown.
bool without_progress(const ProjectionRecord& r, const std::set<std::string>& partitioned) {
  return projections::parse_seat_name(r.name).has_value() || partitioned.contains(r.name);
}

Json status_json(const ProjectionRecord& r, Position head, const ProjectionDetails& details,
                 bool detailed, const std::set<std::string>& partitioned) {
  Json j;
  j["name"] = r.name;
  j["owner"] = optional_string(r.owner);
  j["owned"] = r.owned;
  j["position"] = r.checkpoint.to_string();
  j["head"] = head.to_string();
  j["lag"] = without_progress(r, partitioned) ? Json(nullptr) : Json(lag_of(r.checkpoint, head));
  j["state"] = r.state;
  j["lease_expires_at"] =
      r.lease_expires_at ? Json(format_timestamp(*r.lease_expires_at)) : Json(nullptr);
  if (detailed) {
    j["fencing_token"] = r.fencing_token;
    j["events_applied"] = r.events_applied;
    j["last_error"] = optional_string(r.last_error);
    j["updated_at"] = format_timestamp(r.updated_at);
    j["rebuild"] = details.rebuild ? rebuild_json(*details.rebuild) : Json(nullptr);
    j["dead_letters"] = {{"parked", details.parked}, {"retry_requested", details.retry_requested}};
  }
  // Blue/green rebuilds (docs/read-models.md): where the tables' current generation lives, and
  // for a generation being built ("<name>.g<n>"), the projection it will replace.
  j["read_schema"] = optional_string(r.read_schema);
  j["generation_of"] = optional_string(generation_of(r.name));
  // Partitioned projections (docs/scaling.md): a partition's projection, index and count; a
  // runner seat's projection.
  if (const auto part = projections::parse_partition_name(r.name)) {
    j["partition"] = {{"of", part->projection}, {"index", part->index}, {"count", part->count}};
  } else {
    j["partition"] = nullptr;
  }
  j["runner_seat_of"] = optional_string(projections::parse_seat_name(r.name));
  return j;
}

// Below the table: one line per partitioned projection, with its partitions' spread over the
// live runners, e.g. "psums: 4 partitions, 2 live runners: runner-b holds 2, runner-c holds 2".
void print_partition_notes(const std::vector<ProjectionRecord>& records, std::ostream& out) {
  struct Spread {
    int count = 0;
    int unowned = 0;
    int runners = 0;
    std::map<std::string, int> held;
  };
  std::map<std::string, Spread> spreads;
  for (const auto& r : records) {
    if (const auto part = projections::parse_partition_name(r.name)) {
      auto& spread = spreads[part->projection];
      spread.count = part->count;
      if (r.owned && r.owner) {
        ++spread.held[*r.owner];
      } else {
        ++spread.unowned;
      }
    } else if (const auto seat = projections::parse_seat_name(r.name); seat && r.owned) {
      ++spreads[*seat].runners;
    }
  }
  for (const auto& [name, spread] : spreads) {
    if (spread.count == 0) continue;
    out << name << ": " << spread.count << " partitions, " << spread.runners << " live runner"
        << (spread.runners == 1 ? "" : "s");
    const char* separator = ": ";
    for (const auto& [owner, count] : spread.held) {
      out << separator << owner << " holds " << count;
      separator = ", ";
    }
    if (spread.unowned > 0) out << separator << spread.unowned << " not held";
    out << '\n';
  }
}

void print_status_table(const std::vector<ProjectionRecord>& records, Position head, bool detailed,
                        std::ostream& out) {
  const auto partitioned = partitioned_projections(records);
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header{"NAME", "OWNER", "POSITION", "LAG", "STATE", "LEASE EXPIRES"};
  if (detailed) {
    header.insert(header.end(), {"TOKEN", "APPLIED"});
  }
  rows.push_back(header);
  for (const auto& r : records) {
    const bool no_progress = without_progress(r, partitioned);
    std::string state = r.state.empty() ? "-" : r.state;
    if (projections::parse_seat_name(r.name)) {
      state = "seat";
    } else if (no_progress) {
      state = "partitioned";
    }
    std::vector<std::string> row{r.name,
                                 r.owner.value_or("-"),
                                 no_progress ? "-" : r.checkpoint.to_string(),
                                 no_progress ? "-" : std::to_string(lag_of(r.checkpoint, head)),
                                 state,
                                 lease_cell(r)};
    if (detailed) {
      row.push_back(std::to_string(r.fencing_token));
      row.push_back(std::to_string(r.events_applied));
    }
    rows.push_back(std::move(row));
  }
  print_table(rows, out);
}

// Below the table of `status`: a line for each last error, open rebuild and dead letters.
void print_status_notes(const ProjectionRecord& record, const ProjectionDetails& details,
                        std::ostream& out) {
  const auto& name = record.name;
  if (record.last_error) {
    out << name << ": last error: " << table_cell(*record.last_error) << '\n';
  }
  if (const auto& rebuild = details.rebuild) {
    out << name << ": rebuild " << rebuild->id << ' ' << projections::to_string(rebuild->state);
    if (const auto p = progress_of(*rebuild)) {
      out << ' ' << p->percent << "% (" << p->done << " of " << p->total << " events)";
    }
    out << '\n';
  }
  if (details.parked + details.retry_requested > 0) {
    out << name << ": dead letters: " << details.parked << " parked, " << details.retry_requested
        << " retry requested (`annals dead-letters list "
        << "--projection " << name << "`)\n";
  }
}

using SteadyClock = std::chrono::steady_clock;

// When following a rebuild gives up: args.timeout_seconds from now, or, without --timeout, a
// deadline that never comes (a plain time point, not an optional, which g++ 12 -O3 reports as
// maybe-uninitialized).
SteadyClock::time_point rebuild_deadline(const RebuildArgs& args) {
  if (!args.timeout_seconds) return SteadyClock::time_point::max();
  if (!std::isfinite(*args.timeout_seconds) || *args.timeout_seconds <= 0) {
    throw InvalidArgumentError("--timeout must be a number of seconds > 0");
  }
  return SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                  std::chrono::duration<double>(*args.timeout_seconds));
}

// Files the request (or joins the open one); ExitError kNotFound for an unknown projection,
// kUsage for a partitioned one (its runners cannot reset the shared read model one partition
// at a time).
RebuildRequest file_rebuild_request(ProjectionStore& store, const std::string& name) {
  const auto of = partitioned_of(name);
  if (of || projections::stored_partition_count(store, name) > 1) {
    throw ExitError(ExitCode::kUsage,
                    "'" + of.value_or(name) +
                        "' is a partitioned projection: rebuild all its partitions at once with "
                        "annals::projections::rebuild_partitions() in the application, with its "
                        "runners stopped (docs/scaling.md, \"Partitioned projections\")");
  }
  try {
    return store.request_rebuild(name);
  } catch (const NotFoundError&) {
    throw ExitError(ExitCode::kNotFound, unknown_projection(name));
  }
}

// Follows one rebuild request, reading it every args.poll_interval, and prints each change
// once: who owns the projection while the request waits, that it runs, its progress (a bar
// redrawn in place on a terminal, else one line per new percentage) and how it ended.
class RebuildFollower {
 public:
  RebuildFollower(ProjectionStore& store, const RebuildArgs& args, std::ostream& out)
      : store_(store), args_(args), out_(out), label_("rebuild " + args.name + ": ") {}

  void report_filed(const RebuildRequest& request) {
    if (args_.json) {
      line({{"event", "filed"},
            {"projection", args_.name},
            {"request", request.id},
            {"state", projections::to_string(request.state)}});
      return;
    }
    out_ << label_ << "request " << request.id << ' ' << projections::to_string(request.state)
         << '\n'
         << std::flush;
  }

  // The owner matters only while the request waits for one: says who it is, or that there is
  // none, each time that changes.
  void report_owner() {
    const auto record = find_projection(store_, args_.name);
    if (record && record->owned) {
      if (!said_owner_ && args_.json) {
        line({{"event", "waiting"}, {"owner", record->owner.value_or("?")}});
        said_owner_ = true;
      }
      if (!said_owner_) {
        out_ << label_ << "owned by " << record->owner.value_or("?")
             << "; waiting for it to start the rebuild\n"
             << std::flush;
        said_owner_ = true;
      }
    } else if (!said_unowned_ && args_.json) {
      line({{"event", "waiting"}, {"owner", nullptr}});
      said_unowned_ = true;
      said_owner_ = false;
    } else if (!said_unowned_) {
      out_ << label_ << "no runner owns " << args_.name
           << " at the moment: the request waits until a runner running it takes it over\n"
           << std::flush;
      said_unowned_ = true;
      said_owner_ = false;
    }
  }

  // Returns when the rebuild is done; throws ExitError when it failed, its request vanished or
  // `deadline` passed.
  void follow(std::int64_t request_id, SteadyClock::time_point deadline) {
    while (true) {
      const auto current = store_.rebuild_request(request_id);
      if (!current) {
        end_bar();
        throw ExitError(ExitCode::kError, "rebuild request " + std::to_string(request_id) + " of " +
                                              args_.name + " disappeared from the store");
      }
      if (on_state(*current)) return;
      if (SteadyClock::now() >= deadline) {
        end_bar();
        throw ExitError(ExitCode::kTimeout,
                        "rebuild of " + args_.name + " not finished after --timeout (request " +
                            std::to_string(request_id) + " is " +
                            projections::to_string(current->state) +
                            "); it goes on: run the same command again to follow it");
      }
      std::this_thread::sleep_for(args_.poll_interval);
    }
  }

 private:
  // Reports the request's state; true once the rebuild is done.
  bool on_state(const RebuildRequest& current) {
    switch (current.state) {
      case RebuildState::kRequested:
        report_owner();
        return false;
      case RebuildState::kRunning:
        report_running();
        report_progress(current);
        return false;
      case RebuildState::kDone:
        report_done(current);
        return true;
      case RebuildState::kFailed:
        end_bar();
        throw ExitError(ExitCode::kError,
                        "rebuild of " + args_.name +
                            " failed: " + table_cell(current.message.value_or("no reason given")));
    }
    return false;
  }

  void report_running() {
    if (said_running_) return;
    const auto record = find_projection(store_, args_.name);
    if (args_.json) {
      line({{"event", "running"},
            {"owner", record && record->owner ? Json(*record->owner) : Json(nullptr)}});
      said_running_ = true;
      return;
    }
    out_ << label_ << "running"
         << (record && record->owner ? " on " + *record->owner : std::string()) << '\n'
         << std::flush;
    said_running_ = true;
  }

  void report_progress(const RebuildRequest& current) {
    const auto p = progress_of(current);
    if (!p || p->percent == last_percent_) return;
    last_percent_ = p->percent;
    if (args_.json) {
      line(
          {{"event", "progress"}, {"percent", p->percent}, {"done", p->done}, {"total", p->total}});
    } else if (args_.terminal) {
      constexpr int kWidth = 30;
      const int filled = p->percent * kWidth / 100;
      out_ << '\r' << label_ << '[' << std::string(static_cast<std::size_t>(filled), '#')
           << std::string(static_cast<std::size_t>(kWidth - filled), '.') << "] " << p->percent
           << "% (" << p->done << " of " << p->total << " events)" << std::flush;
      bar_drawn_ = true;
    } else {
      out_ << label_ << p->percent << "% (" << p->done << " of " << p->total << " events)\n"
           << std::flush;
    }
  }

  void report_done(const RebuildRequest& current) {
    end_bar();
    const auto p = progress_of(current);
    if (args_.json) {
      line({{"event", "done"}, {"events", p ? Json(p->total) : Json(nullptr)}});
      return;
    }
    out_ << label_ << "done";
    if (p) out_ << " (" << p->total << " events)";
    out_ << '\n' << std::flush;
  }

  // One JSON object per line (--json), flushed: a program follows the rebuild as it goes.
  void line(const Json& object) { out_ << dump(object) << '\n' << std::flush; }

  // Ends the line of a progress bar before anything else is printed.
  void end_bar() {
    if (bar_drawn_) out_ << '\n';
    bar_drawn_ = false;
  }

  ProjectionStore& store_;
  const RebuildArgs& args_;
  std::ostream& out_;
  const std::string label_;
  bool said_unowned_ = false;
  bool said_owner_ = false;
  bool said_running_ = false;
  int last_percent_ = -1;
  bool bar_drawn_ = false;
};

}  // namespace

void projections_status(ProjectionStore& store, EventReader& events,
                        const ProjectionStatusArgs& args, std::ostream& out) {
  const auto records = select_projections(store, args);
  const auto head = events.head_position();
  const auto details = details_of(store, records, args);
  if (args.json) {
    const auto partitioned = partitioned_projections(records);
    for (std::size_t i = 0; i < records.size(); ++i) {
      out << dump(status_json(records[i], head, details[i], args.detailed, partitioned)) << '\n';
    }
    return;
  }
  if (records.empty()) {
    out << "no projections registered (a runner registers its projections when it starts)\n";
    return;
  }
  print_status_table(records, head, args.detailed, out);
  print_partition_notes(records, out);
  if (!args.detailed) return;
  for (std::size_t i = 0; i < records.size(); ++i) print_status_notes(records[i], details[i], out);
}

void projections_rebuild(ProjectionStore& store, const RebuildArgs& args, std::ostream& out) {
  const auto deadline = rebuild_deadline(args);
  const auto request = file_rebuild_request(store, args.name);
  RebuildFollower follower(store, args, out);
  follower.report_filed(request);
  if (args.no_wait) {
    if (request.state == RebuildState::kRequested) follower.report_owner();
    return;
  }
  follower.follow(request.id, deadline);
}

void projections_repartition(ProjectionStore& store, const RepartitionArgs& args,
                             std::ostream& out) {
  if (args.partitions < 1 || args.partitions > projections::kMaxPartitions) {
    throw InvalidArgumentError("--partitions must be between 1 and " +
                               std::to_string(projections::kMaxPartitions) + ", got " +
                               std::to_string(args.partitions));
  }
  if (!std::isfinite(args.wait_seconds) || args.wait_seconds < 0) {
    throw InvalidArgumentError("--wait must be a number of seconds >= 0");
  }
  if (!find_projection(store, args.name)) {
    throw ExitError(ExitCode::kNotFound, unknown_projection(args.name));
  }
  projections::RepartitionOptions options;
  options.owner = "annals-cli-repartition";
  options.wait = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(args.wait_seconds));
  const auto done = projections::repartition_aligned(store, args.name, args.partitions, options);
  if (args.json) {
    out << dump(Json{{"projection", args.name},
                     {"from", done.from},
                     {"to", done.to},
                     {"position", done.at.to_string()}})
        << '\n';
    return;
  }
  out << args.name << ": repartitioned from " << done.from << " to " << done.to
      << " partition(s) at " << done.at.to_string()
      << "; start its runners again to run the new partitions\n";
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
                    table_cell(d.error)});
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
