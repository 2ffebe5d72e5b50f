// import_log: verify an export's hash chains in the client, then store its events in one
// transaction (annals/postgres/log_transfer.hpp).
//
// Writing: one COPY of every line, under a savepoint (the fast path: a store that holds none of
// the file's events, the usual case). When the store holds one of its event ids or stream
// versions already (a second import of the same file, an overlapping export, a conflict), the
// unique indexes refuse the COPY at that row; the savepoint undoes it and the batch path sorts
// the file's events into stored-as-in-the-file (skipped), conflicting (refused) and new
// (inserted).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/timestamp.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/postgres/log_transfer.hpp"
#include "array_literal.hpp"
#include "database_checks.hpp"
#include "event_hasher.hpp"
#include "log_line.hpp"
#include "pooled_call.hpp"

namespace annals::postgres {
namespace {

constexpr std::size_t kBatch = 1000;

constexpr const char* kStoredHash =
    "SELECT encode(e.hash, 'hex') FROM annals.events e"
    " WHERE e.stream_id = $1 AND e.stream_version = $2";
constexpr const char* kStoredIds =
    "SELECT e.event_id::text, e.stream_id, e.stream_version, encode(e.hash, 'hex')"
    "  FROM annals.events e WHERE e.event_id = ANY ($1::uuid[])";
// The hash is given, so the trigger that computes it for the writer's rows does not fire; the
// database still gives the transaction id and the position.
constexpr const char* kInsert =
    "INSERT INTO annals.events (stream_id, stream_version, event_id, event_type, schema_version,"
    "                           data, metadata, recorded_at, hash)"
    " SELECT u.s, u.v, u.id, u.t, u.sv, u.d::jsonb, u.m::jsonb,"
    "        timestamptz 'epoch' + u.us * interval '1 microsecond', decode(u.h, 'hex')"
    "   FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::integer[],"
    "               $6::text[], $7::text[], $8::bigint[], $9::text[])"
    "        WITH ORDINALITY AS u(s, v, id, t, sv, d, m, us, h, ord)"
    "  ORDER BY u.ord";

// The COPY of the fast path: the columns kInsert sets, as text (pqxx::stream_to escapes them).
const std::vector<std::string> kCopyColumns = {"stream_id",  "stream_version", "event_id",
                                               "event_type", "schema_version", "data",
                                               "metadata",   "recorded_at",    "hash"};

// Where a line is, for messages.
std::string at_line(std::int64_t number, const detail::LogLine& line) {
  return "line " + std::to_string(number) + " (stream \"" + line.stream + "\", version " +
         std::to_string(line.version) + ", event " + line.event_id + ")";
}

// Reads the file line by line; f(line number, parsed line). Reports progress to `options`.
template <typename F>
void for_each_line(const std::string& path, const ImportOptions& options, F&& f) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw NotFoundError("import: cannot read " + path);
  ImportProgress progress;
  if (options.on_progress) {
    std::error_code size_error;
    const auto size = std::filesystem::file_size(path, size_error);
    progress.bytes_total = size_error ? 0 : static_cast<std::uint64_t>(size);
  }
  std::string text;
  std::int64_t number = 0;
  while (std::getline(in, text)) {
    ++number;
    progress.bytes_read += text.size() + 1;
    if (options.on_progress && number % 1000 == 0) {
      progress.events = number;
      options.on_progress(progress);
    }
    if (text.empty()) continue;
    try {
      f(number, detail::parse_line(text));
    } catch (const InvalidArgumentError& e) {
      throw InvalidArgumentError("import: " + path + " line " + std::to_string(number) + ": " +
                                 e.what());
    }
  }
  if (in.bad()) throw NotFoundError("import: reading " + path + " failed");
  if (options.on_progress) {
    progress.events = number;
    progress.bytes_read = std::max(progress.bytes_read, progress.bytes_total);
    options.on_progress(progress);
  }
}

std::string hash_of(detail::EventHasher& hasher, const std::string& previous_raw,
                    const detail::LogLine& line) {
  const auto version = std::to_string(line.version);
  const auto schema = std::to_string(line.schema_version);
  const auto micros = std::to_string(line.recorded_micros);
  return detail::to_hex(
      hasher.hash(previous_raw, detail::StoredEventText{.event_id = line.event_id,
                                                        .stream_id = line.stream,
                                                        .stream_version = version,
                                                        .event_type = line.type,
                                                        .schema_version = schema,
                                                        .data = line.data,
                                                        .metadata = line.metadata,
                                                        .recorded_micros = micros}));
}

// A stream's chain so far in the file.
struct Chain {
  std::int64_t version = 0;
  std::string hash_raw;  // the 32 bytes of the last event's hash
};

// The first line of a stream that starts after version 1: checked against the store.
struct Continuation {
  std::int64_t number = 0;
  detail::LogLine line;
};

// Every chain of the file, in the client, line by line as the file is written: a line is
// checked before it is sent, so nothing of a changed file is committed (the import's
// transaction rolls back at the first bad line), and what is written is exactly what was
// verified (no second reading of a file that may have changed meanwhile). Collects the streams
// that start after version 1 (their first event chains to the store), and counts lines and
// streams.
class FileVerifier {
 public:
  void check(std::int64_t number, const detail::LogLine& line) {
    ++events_;
    std::string raw;
    if (line.hash_hex.size() != 64 || !detail::decode_bytea("\\x" + line.hash_hex, raw)) {
      throw InvalidArgumentError("import: " + at_line(number, line) +
                                 ": \"hash\" must be 64 hex digits");
    }
    static_cast<void>(EventId::parse(line.event_id));
    auto [chain, first] = chains_.try_emplace(line.stream);
    if (first) {
      if (line.version < 1) {
        throw CorruptionError("import: " + at_line(number, line) + ": versions start at 1");
      }
      if (line.version > 1) continuations_.push_back(Continuation{number, line});
    } else if (line.version != chain->second.version + 1) {
      throw CorruptionError("import: " + at_line(number, line) + ": follows version " +
                            std::to_string(chain->second.version) +
                            " of its stream; the file was changed. Nothing was written");
    }
    if (!first || line.version == 1) {
      if (hash_of(hasher_, chain->second.hash_raw, line) != line.hash_hex) {
        throw CorruptionError("import: " + at_line(number, line) +
                              ": its hash does not match its content and its predecessor; the "
                              "file was changed. Nothing was written");
      }
    }
    chain->second = Chain{line.version, std::move(raw)};
  }

  [[nodiscard]] std::int64_t events() const noexcept { return events_; }
  [[nodiscard]] std::int64_t streams() const noexcept {
    return static_cast<std::int64_t>(chains_.size());
  }
  [[nodiscard]] const std::vector<Continuation>& continuations() const noexcept {
    return continuations_;
  }

 private:
  std::map<std::string, Chain> chains_;
  std::vector<Continuation> continuations_;
  detail::EventHasher hasher_;
  std::int64_t events_ = 0;
};

// The first event of a stream that starts after version 1 must chain to the stored one before.
void check_continuation(pqxx::work& tx, detail::EventHasher& hasher, const Continuation& c) {
  const auto rows = tx.exec_params(kStoredHash, c.line.stream, c.line.version - 1);
  if (rows.empty()) {
    throw CorruptionError("import: " + at_line(c.number, c.line) +
                          ": the store does not hold the version before it; nothing was written");
  }
  std::string previous;
  static_cast<void>(detail::decode_bytea("\\x" + rows[0][0].as<std::string>(), previous));
  if (hash_of(hasher, previous, c.line) != c.line.hash_hex) {
    throw CorruptionError("import: " + at_line(c.number, c.line) +
                          ": its hash does not chain to the stored event before it; nothing was "
                          "written");
  }
}

// One batch of lines: those not stored yet are inserted; those stored must be stored as in
// the file.
class BatchWriter {
 public:
  explicit BatchWriter(pqxx::work& tx) : tx_(tx) {}

  void add(std::int64_t number, detail::LogLine line) {
    lines_.push_back(Continuation{number, std::move(line)});
    if (lines_.size() == kBatch) flush();
  }

  void flush() {
    if (lines_.empty()) return;
    const auto stored = stored_ids();
    detail::ArrayLiteral streams, versions, ids, types, schemas, data, metadata, micros, hashes;
    std::int64_t count = 0;
    for (const auto& [number, line] : lines_) {
      const auto found = stored.find(line.event_id);
      if (found != stored.end()) {
        if (found->second !=
            line.stream + '\n' + std::to_string(line.version) + '\n' + line.hash_hex) {
          throw IdempotencyError("import: " + at_line(number, line) +
                                 ": this event id is stored as another event; nothing was written");
        }
        ++already_stored;
        continue;
      }
      streams.add_quoted(line.stream);
      versions.add_number(line.version);
      ids.add_plain(line.event_id);
      types.add_quoted(line.type);
      schemas.add_number(line.schema_version);
      data.add_quoted(line.data);
      metadata.add_quoted(line.metadata);
      micros.add_number(line.recorded_micros);
      hashes.add_plain(line.hash_hex);
      ++count;
    }
    if (count > 0) {
      try {
        tx_.exec_params(kInsert, std::move(streams).finish(), std::move(versions).finish(),
                        std::move(ids).finish(), std::move(types).finish(),
                        std::move(schemas).finish(), std::move(data).finish(),
                        std::move(metadata).finish(), std::move(micros).finish(),
                        std::move(hashes).finish());
      } catch (const pqxx::unique_violation& e) {
        throw IdempotencyError(
            std::string("import: a stream version of the file is taken by another event in the "
                        "store; nothing was written (") +
            e.what() + ")");
      }
      written += count;
    }
    lines_.clear();
  }

  std::int64_t written = 0;
  std::int64_t already_stored = 0;

 private:
  // event id -> "stream\nversion\nhash" of the lines' ids that are stored.
  std::map<std::string, std::string> stored_ids() {
    detail::ArrayLiteral ids;
    for (const auto& entry : lines_) ids.add_plain(entry.line.event_id);
    std::map<std::string, std::string> stored;
    for (const auto& row : tx_.exec_params(kStoredIds, std::move(ids).finish())) {
      stored.emplace(row[0].as<std::string>(), row[1].as<std::string>() + '\n' +
                                                   row[2].as<std::string>() + '\n' +
                                                   row[3].as<std::string>());
    }
    return stored;
  }

  pqxx::work& tx_;
  std::vector<Continuation> lines_;
};

// The fast path: every line of the file in one COPY, under a savepoint. Returns the number of
// events written, or nothing when the store holds one of the file's event ids or stream versions
// already: the savepoint then undoes the COPY, and the caller takes the batch path.
std::optional<std::int64_t> copy_all(pqxx::work& tx, const std::string& path,
                                     const ImportOptions& options, FileVerifier& verifier) {
  try {
    pqxx::subtransaction copy(tx, "annals_import_copy");
    std::int64_t rows = 0;
    {
      pqxx::stream_to stream(copy, "annals.events", kCopyColumns);
      for_each_line(path, options, [&](std::int64_t number, const detail::LogLine& line) {
        verifier.check(number, line);
        stream << std::make_tuple(line.stream, std::to_string(line.version), line.event_id,
                                  line.type, std::to_string(line.schema_version), line.data,
                                  line.metadata,
                                  format_timestamp(std::chrono::system_clock::time_point(
                                      std::chrono::microseconds(line.recorded_micros))),
                                  "\\x" + line.hash_hex);
        ++rows;
      });
      stream.complete();
    }
    copy.commit();
    return rows;
  } catch (const pqxx::unique_violation&) {
    return std::nullopt;
  }
}

}  // namespace

ImportSummary import_log(const std::string& connection_string, const std::string& path,
                         const ImportOptions& options) {
  {  // a file that cannot be read is refused before a connection is opened
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw NotFoundError("import: cannot read " + path);
  }
  return detail::with_connection(connection_string, "import", [&](pqxx::connection& connection) {
    pqxx::work tx(connection);
    static_cast<void>(detail::check_database(tx));
    // Appends wait until the import commits; reads go on.
    tx.exec("LOCK TABLE annals.events IN EXCLUSIVE MODE");
    ImportSummary summary;
    auto verifier = std::make_unique<FileVerifier>();
    if (const auto copied = copy_all(tx, path, options, *verifier)) {
      summary.written = *copied;
    } else {
      // Some of the file is stored: verify and write it again, batch by batch.
      verifier = std::make_unique<FileVerifier>();
      BatchWriter writer(tx);
      for_each_line(path, options, [&](std::int64_t number, detail::LogLine line) {
        verifier->check(number, line);
        writer.add(number, std::move(line));
      });
      writer.flush();
      summary.written = writer.written;
      summary.already_stored = writer.already_stored;
    }
    detail::EventHasher hasher;
    for (const auto& c : verifier->continuations()) check_continuation(tx, hasher, c);
    summary.events = verifier->events();
    summary.streams = verifier->streams();
    if (summary.written > 0) tx.exec("SELECT pg_notify('annals_events', '')");
    tx.commit();
    return summary;
  });
}

}  // namespace annals::postgres
