// annals::postgres::verify: recompute every event's hash in the client and check what guards
// the log (ARCHITECTURE decision 8).
#include "annals/postgres/verify.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "annals/eventstore/error.hpp"
#include "database_checks.hpp"
#include "event_hasher.hpp"
#include "libpq_connection.hpp"
#include "pooled_call.hpp"
#include "shipped_functions.hpp"
#include "sql.hpp"
#include "verify_sql.hpp"

namespace annals::postgres {
namespace {

using detail::LibpqConnection;
using detail::parse_int;

// A trigger a table must have, enabled for ordinary sessions, and the function it must run.
struct ExpectedTrigger {
  std::string_view name;
  std::string_view function;
};

// The triggers annals.events must have. The only list of them: a migration that adds a
// trigger adds it here.
constexpr ExpectedTrigger kExpectedTriggers[] = {
    {"events_refuse_update_delete", "annals.refuse_event_change"},
    {"events_refuse_truncate", "annals.refuse_event_change"},
    // sql/0005: sets the database's values of rows inserted without a hash
    {"events_set_chain", "annals.set_event_chain"},
};
// Each partition of a partitioned log (sql/0017, 0019): the same guards (row triggers cloned
// from the parent, its own TRUNCATE guard), and the insert trigger reads the head from
// annals.stream_heads (set_partitioned_chain).
constexpr ExpectedTrigger kPartitionTriggers[] = {
    {"events_refuse_update_delete", "annals.refuse_event_change"},
    {"events_refuse_truncate", "annals.refuse_event_change"},
    {"events_set_chain", "annals.set_partitioned_chain"},
};
// The partitioned annals.events itself: the same, and a statement trigger (not cloned onto
// partitions) that claims each inserted event id in annals.event_ids and moves the streams'
// heads in annals.stream_heads.
constexpr ExpectedTrigger kPartitionedTriggers[] = {
    {"events_refuse_update_delete", "annals.refuse_event_change"},
    {"events_refuse_truncate", "annals.refuse_event_change"},
    {"events_set_chain", "annals.set_partitioned_chain"},
    {"events_move_heads", "annals.move_stream_heads"},
};
// annals.stream_heads (sql/0019): written only by the log's own trigger.
constexpr ExpectedTrigger kHeadTriggers[] = {
    {"stream_heads_refuse_change", "annals.refuse_head_change"},
    {"stream_heads_refuse_truncate", "annals.refuse_head_change"},
};

// A table's triggers by name: their firing mode and the function each runs.
using TriggerModes = std::map<std::string, std::pair<std::string, std::string>, std::less<>>;

std::string_view trigger_mode_problem(std::string_view mode) {
  if (mode == "O" || mode == "A") return {};
  return mode == "R" ? "fires only for replication sessions (ENABLE REPLICA TRIGGER)"
                     : "is disabled";
}

// Findings in report order, cut at max_findings.
class Findings {
 public:
  explicit Findings(VerifyReport& report, std::size_t max) : report_(report), max_(max) {}

  void add(FindingKind kind, std::string message, std::optional<std::string> stream = {},
           std::optional<StreamVersion> version = {}) {
    if (report_.findings.size() >= max_) {
      report_.truncated = true;
      return;
    }
    report_.findings.push_back({.kind = kind,
                                .stream_id = std::move(stream),
                                .version = version,
                                .message = std::move(message)});
  }

 private:
  VerifyReport& report_;
  std::size_t max_;
};

bool is_true(std::string_view text) { return text == "t"; }

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Checks that `table` has exactly the triggers `expected`, each firing for ordinary sessions
// and running its shipped function.
void check_trigger_set(const TriggerModes& modes, std::span<const ExpectedTrigger> expected,
                       const std::string& table, Findings& findings) {
  for (const auto& trigger : expected) {
    std::string message = "the trigger ";
    message += trigger.name;
    message += " of ";
    message += table;
    const auto found = modes.find(trigger.name);
    if (found == modes.end()) {
      message += " is missing: what it refuses or sets is not enforced";
      findings.add(FindingKind::kTriggerMissing, std::move(message));
    } else if (const auto problem = trigger_mode_problem(found->second.first); !problem.empty()) {
      message += ' ';
      message += problem;
      message += ": ordinary sessions bypass it";
      findings.add(FindingKind::kGuardDisabled, std::move(message));
    } else if (found->second.second != trigger.function) {
      message += " runs ";
      message += found->second.second;
      message += "() instead of ";
      message += trigger.function;
      message += "(): what it refuses or sets is not enforced";
      findings.add(FindingKind::kTriggerMissing, std::move(message));
    }
  }
  for (const auto& entry : modes) {
    const std::string& name = entry.first;
    if (std::none_of(expected.begin(), expected.end(),
                     [&name](const ExpectedTrigger& e) { return e.name == name; })) {
      std::string message = table;
      message += " has a trigger the store does not ship: ";
      message += name;
      findings.add(FindingKind::kTriggerUnexpected, std::move(message));
    }
  }
}

TriggerModes trigger_modes(const LibpqConnection::Result& rows) {
  TriggerModes modes;
  for (int i = 0; i < rows.rows(); ++i) {
    modes.emplace(std::string(rows.text(i, 0)),
                  std::pair(std::string(rows.text(i, 1)), std::string(rows.text(i, 2))));
  }
  return modes;
}

// `heads`: whether annals.stream_heads exists (kSchemaPresent, column 4).
void check_triggers(LibpqConnection& c, bool heads, Findings& findings) {
  const bool partitioned = is_true(c.exec(verify_sql::kLogPartitioned).text(0, 0));
  const std::span<const ExpectedTrigger> expected =
      partitioned ? std::span<const ExpectedTrigger>(kPartitionedTriggers)
                  : std::span<const ExpectedTrigger>(kExpectedTriggers);
  check_trigger_set(trigger_modes(c.exec(verify_sql::kTriggers)), expected, "annals.events",
                    findings);
  if (!partitioned) return;
  if (heads) {
    check_trigger_set(trigger_modes(c.exec(verify_sql::kHeadTriggers)), kHeadTriggers,
                      "annals.stream_heads", findings);
  } else {
    findings.add(FindingKind::kStreamHeadMismatch,
                 "annals.events is partitioned but annals.stream_heads is missing: run `annals "
                 "migrate` (sql/0019_stream_heads.sql)");
  }
  // Every partition: the parent's row triggers (cloned) and its own TRUNCATE guard.
  const auto partition_rows = c.exec(verify_sql::kPartitionTriggers);
  std::map<std::string, TriggerModes> partitions;
  for (int i = 0; i < partition_rows.rows(); ++i) {
    auto& triggers = partitions[std::string(partition_rows.text(i, 0))];
    if (!partition_rows.is_null(i, 1)) {
      triggers.emplace(std::string(partition_rows.text(i, 1)),
                       std::pair(std::string(partition_rows.text(i, 2)),
                                 std::string(partition_rows.text(i, 3))));
    }
  }
  for (const auto& [table, triggers] : partitions) {
    check_trigger_set(triggers, kPartitionTriggers, "partition " + table + " of annals.events",
                      findings);
  }
}

std::vector<std::string> normalized_config(std::string_view config) {
  std::vector<std::string> settings;
  while (!config.empty()) {
    const auto end = std::min(config.find('\n'), config.size());
    const auto entry = config.substr(0, end);
    const auto equals = std::min(entry.find('='), entry.size());
    settings.push_back(detail::normalize_setting(entry.substr(0, equals),
                                                 entry.substr(std::min(equals + 1, entry.size()))));
    config.remove_prefix(std::min(end + 1, config.size()));
  }
  std::sort(settings.begin(), settings.end());
  return settings;
}

// annals.xid_offset() is the one function whose body changes in service: `annals
// restore-check --fix` (annals.fix_restored_xids, sql/0013) writes the offset into it as
// "SELECT <digits>::bigint". Any other body is a replacement.
bool is_offset_body(std::string_view name, std::string_view body) {
  constexpr std::string_view kPrefix = "SELECT ";
  constexpr std::string_view kSuffix = "::bigint";
  if (name != "xid_offset" || !body.starts_with(kPrefix) || !body.ends_with(kSuffix)) return false;
  const auto digits = body.substr(kPrefix.size(), body.size() - kPrefix.size() - kSuffix.size());
  return !digits.empty() && digits.size() <= 19 &&
         std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A partitioned log: every stream head agrees with its stream's last attached event (version,
// position, transaction id, hash, tombstone), and every stream has one (sql/0019).
void check_stream_heads(LibpqConnection& c, const VerifyOptions& options, Findings& findings) {
  c.prepare(verify_sql::kHeadMismatchesName, verify_sql::kHeadMismatches);
  const std::array<const char*, 1> params{options.stream ? options.stream->c_str() : nullptr};
  const auto rows = c.exec_prepared(verify_sql::kHeadMismatchesName, params);
  const auto where = [&](int row, int column, const char* what) {
    if (rows.is_null(row, column)) return std::string("none");
    return std::string(what) + " " + std::string(rows.text(row, column)) + " at position " +
           std::string(rows.text(row, column + 1));
  };
  for (int i = 0; i < rows.rows(); ++i) {
    const std::string stream(rows.text(i, 0));
    findings.add(FindingKind::kStreamHeadMismatch,
                 "stream " + in_quotes(stream) + ": its head in annals.stream_heads (" +
                     where(i, 1, "version") + ") is not its last event in the log (" +
                     where(i, 3, "version") +
                     "): the head table was changed, or the log past the head's trigger",
                 stream);
  }
}

void check_functions(LibpqConnection& c, Findings& findings) {
  const auto& shipped = detail::shipped_functions();
  const auto rows = c.exec(verify_sql::kFunctions);
  std::unordered_set<std::string> present;
  for (int i = 0; i < rows.rows(); ++i) {
    const std::string name(rows.text(i, 0));
    const std::string signature = "annals." + name + "(" + std::string(rows.text(i, 1)) + ")";
    present.insert(name);
    const auto found = shipped.find(name);
    if (found == shipped.end()) {
      findings.add(FindingKind::kFunctionUnexpected,
                   signature + " is not a function the store ships");
      continue;
    }
    if (rows.text(i, 2) != found->second.body && !is_offset_body(name, rows.text(i, 2))) {
      findings.add(FindingKind::kFunctionChanged,
                   signature + " has another body than the shipped one: it was replaced");
    }
    if (is_true(rows.text(i, 3)) != found->second.security_definer ||
        normalized_config(rows.text(i, 4)) != found->second.settings) {
      findings.add(FindingKind::kFunctionSecurityChanged,
                   signature +
                       " differs from the shipped one in SECURITY DEFINER/INVOKER or its SET "
                       "clauses (proconfig: \"" +
                       std::string(rows.text(i, 4)) + "\")");
    }
  }
  for (const auto& [name, function] : shipped) {
    if (!present.contains(name)) {
      findings.add(FindingKind::kFunctionMissing,
                   "the store's function annals." + name + " is missing");
    }
  }
}

void check_privileges(LibpqConnection& c, Findings& findings) {
  const auto table = c.exec(verify_sql::kTablePrivileges);
  for (int i = 0; i < table.rows(); ++i) {
    findings.add(FindingKind::kExcessPrivilege, "role " + std::string(table.text(i, 0)) +
                                                    " holds " + std::string(table.text(i, 1)) +
                                                    " on " + std::string(table.text(i, 2)) +
                                                    ": only the table's owner should");
  }
  const auto columns = c.exec(verify_sql::kColumnPrivileges);
  for (int i = 0; i < columns.rows(); ++i) {
    findings.add(FindingKind::kExcessPrivilege,
                 "role " + std::string(columns.text(i, 0)) + " holds " +
                     std::string(columns.text(i, 2)) + " on annals.events column " +
                     std::string(columns.text(i, 1)) +
                     ", which the database must set: it could choose the value");
  }
}

// Returns whether the log is partitioned with stream heads (sql/0019).
bool check_store(LibpqConnection& c, Findings& findings) {
  const auto schema = c.exec(sql::kSchemaPresent);
  if (!is_true(schema.text(0, 0))) {
    throw NotFoundError("the annals schema is missing from the database; run `annals migrate`");
  }
  if (!is_true(schema.text(0, 2))) {
    throw NotFoundError(
        "the annals schema is older than this library (migration "
        "0013_restored_transaction_ids is not applied); run `annals migrate`");
  }
  const bool heads = is_true(schema.text(0, 4));
  check_triggers(c, heads, findings);
  const auto ids = c.exec(sql::kTransactionIdCheck);
  if (!ids.is_null(0, 0)) {
    const auto stored = parse_int<std::uint64_t>(ids.text(0, 0), "transaction id");
    const auto next = parse_int<std::uint64_t>(ids.text(0, 1), "transaction id");
    if (stored >= next) {
      findings.add(FindingKind::kTransactionIdsAhead,
                   "stored transaction ids (up to " + std::to_string(stored) +
                       ") are ahead of this server's next one (" + std::to_string(next) +
                       "): the database was restored into a new cluster; readers of the global "
                       "log would misorder events until `annals restore-check --fix` sets the "
                       "offset (see docs/schema.md, \"Restoring a dump\")");
    }
  }
  check_functions(c, findings);
  check_privileges(c, findings);
  return heads;
}

std::string gap_message(std::string_view stream, StreamVersion version, StreamVersion previous) {
  if (previous == 0) {
    return "stream " + in_quotes(stream) + " starts at version " + std::to_string(version) +
           " instead of 1 (its first events were removed)";
  }
  return "stream " + in_quotes(stream) + " jumps from version " + std::to_string(previous) +
         " to " + std::to_string(version) + " (events were removed)";
}

std::string mismatch_message(std::string_view stream, StreamVersion version) {
  return "stream " + in_quotes(stream) + " version " + std::to_string(version) +
         ": the stored hash does not match the event's stored bytes and its predecessor's "
         "hash (the event, or the hash of an earlier event, was changed)";
}

detail::StoredEventText event_text(LibpqConnection::Row row) {
  return {.event_id = row[0],
          .stream_id = row[1],
          .stream_version = row[2],
          .event_type = row[3],
          .schema_version = row[4],
          .data = row[5],
          .metadata = row[6],
          .recorded_micros = row[7]};
}

std::string stored_hash(std::string_view text) {
  std::string bytes;
  if (!detail::decode_bytea(text, bytes)) {
    throw CorruptionError("unreadable stored hash '" + std::string(text) + "'");
  }
  return bytes;
}

bool same(const detail::Sha256Digest& computed, std::string_view stored) {
  return stored.size() == computed.size() &&
         std::memcmp(stored.data(), computed.data(), computed.size()) == 0;
}

// Tells options.on_progress how many events were examined: every 10,000, and at the end.
void report_progress(const VerifyOptions& options, std::int64_t events, bool at_end) {
  if (options.on_progress && (at_end || events % 10'000 == 0)) options.on_progress(events);
}

// Checks each stream's chain as its events arrive in primary-key order, and computes the digest
// over the streams' head hashes in byte order of their ids (independent of the database's
// collation).
class ChainChecker {
 public:
  ChainChecker(Findings& findings, VerifyReport& report, const VerifyOptions& options)
      : findings_(findings), report_(report), options_(options) {}

  void add(const detail::StoredEventText& event, StreamVersion version, std::int64_t micros,
           std::string_view hash) {
    if (!in_stream_ || event.stream_id != stream_) {
      if (in_stream_) heads_.emplace_back(std::move(stream_), std::move(previous_hash_));
      in_stream_ = true;
      stream_.assign(event.stream_id);
      previous_hash_.clear();
      previous_version_ = 0;
      previous_micros_ = std::numeric_limits<std::int64_t>::min();
    }
    if (version != previous_version_ + 1) {
      findings_.add(FindingKind::kVersionGap, gap_message(stream_, version, previous_version_),
                    stream_, version);
    } else {
      ++report_.events_hashed;
      if (!same(hasher_.hash(previous_hash_, event), hash)) {
        findings_.add(FindingKind::kHashMismatch, mismatch_message(stream_, version), stream_,
                      version);
      }
    }
    if (micros < previous_micros_) {
      findings_.add(FindingKind::kRecordedTimeBackwards,
                    "stream " + in_quotes(stream_) + " version " + std::to_string(version) +
                        " was recorded before version " + std::to_string(previous_version_) +
                        " (recorded_at went back " + std::to_string(previous_micros_ - micros) +
                        " µs)",
                    stream_, version);
    }
    previous_version_ = version;
    previous_hash_.assign(hash);
    previous_micros_ = micros;
    ++report_.events;
    report_progress(options_, report_.events, false);
  }

  void finish() {
    report_progress(options_, report_.events, true);
    if (in_stream_) heads_.emplace_back(std::move(stream_), std::move(previous_hash_));
    report_.streams = static_cast<std::int64_t>(heads_.size());
    // std::string orders by unsigned bytes (char_traits<char>::lt), i.e. COLLATE "C".
    std::sort(heads_.begin(), heads_.end());
    detail::Sha256 sha;
    for (const auto& [id, hash] : heads_) {
      sha.update(std::to_string(id.size()) + ":" + id);
      sha.update(hash);
    }
    report_.digest = detail::to_hex(sha.finish());
  }

 private:
  Findings& findings_;
  VerifyReport& report_;
  const VerifyOptions& options_;
  detail::EventHasher hasher_;
  std::vector<std::pair<std::string, std::string>> heads_;  // stream id, head hash
  bool in_stream_ = false;
  std::string stream_;
  std::string previous_hash_;
  StreamVersion previous_version_ = 0;
  std::int64_t previous_micros_ = std::numeric_limits<std::int64_t>::min();
};

// Decodes the rows of verify_sql::kChainCopy (PostgreSQL's binary COPY format) into the text
// forms the hash covers: uuid as 8-4-4-4-12 lower-case hex, integers in decimal, jsonb without
// its version byte.
class BinaryChainRows {
 public:
  explicit BinaryChainRows(ChainChecker& checker) : checker_(checker) {}

  void on_data(std::string_view data) {
    if (!header_done_) {
      static constexpr std::string_view kSignature("PGCOPY\n\377\r\n\0", 11);
      if (data.substr(0, kSignature.size()) != kSignature || data.size() < 19) corrupt();
      const auto extension = read_u32(data.substr(15));
      data.remove_prefix(19 + extension);
      header_done_ = true;
    }
    while (!data.empty()) {
      const auto fields = static_cast<std::int16_t>(read_u16(take(data, 2)));
      if (fields == -1) return;  // the trailer
      if (fields != 9) corrupt();
      std::array<std::string_view, 9> field;
      for (auto& f : field) {
        const auto length = static_cast<std::int32_t>(read_u32(take(data, 4)));
        if (length < 0) corrupt();
        f = take(data, static_cast<std::size_t>(length));
      }
      row(field);
    }
  }

 private:
  [[noreturn]] static void corrupt() {
    throw CorruptionError("verify: unreadable binary COPY data from the server");
  }
  static std::string_view take(std::string_view& data, std::size_t n) {
    if (data.size() < n) corrupt();
    const auto out = data.substr(0, n);
    data.remove_prefix(n);
    return out;
  }
  static std::uint64_t read_be(std::string_view bytes) {
    std::uint64_t value = 0;
    for (const char c : bytes) value = (value << 8U) | static_cast<unsigned char>(c);
    return value;
  }
  static std::uint32_t read_u32(std::string_view bytes) {
    if (bytes.size() < 4) corrupt();
    return static_cast<std::uint32_t>(read_be(bytes.substr(0, 4)));
  }
  static std::uint16_t read_u16(std::string_view bytes) {
    return static_cast<std::uint16_t>(read_be(bytes));
  }
  static std::int64_t int64_of(std::string_view bytes) {
    if (bytes.size() != 8) corrupt();
    return static_cast<std::int64_t>(read_be(bytes));
  }
  static std::string_view decimal(std::int64_t value, std::array<char, 24>& buffer) {
    const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
    (void)ec;  // 24 characters hold every int64
    return {buffer.data(), static_cast<std::size_t>(end - buffer.data())};
  }
  static std::string_view jsonb_text(std::string_view bytes) {
    if (bytes.empty() || bytes[0] != 1) corrupt();
    return bytes.substr(1);
  }
  std::string_view uuid_text(std::string_view bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    if (bytes.size() != 16) corrupt();
    std::size_t out = 0;
    for (std::size_t i = 0; i < 16; ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) uuid_[out++] = '-';
      const auto b = static_cast<unsigned char>(bytes[i]);
      uuid_[out++] = kDigits[b >> 4U];
      uuid_[out++] = kDigits[b & 0xFU];
    }
    return {uuid_.data(), uuid_.size()};
  }

  void row(const std::array<std::string_view, 9>& field) {
    const auto version = int64_of(field[2]);
    if (field[4].size() != 4) corrupt();
    const auto schema = static_cast<std::int32_t>(read_u32(field[4]));
    const auto micros = int64_of(field[7]);
    const detail::StoredEventText event{.event_id = uuid_text(field[0]),
                                        .stream_id = field[1],
                                        .stream_version = decimal(version, version_),
                                        .event_type = field[3],
                                        .schema_version = decimal(schema, schema_),
                                        .data = jsonb_text(field[5]),
                                        .metadata = jsonb_text(field[6]),
                                        .recorded_micros = decimal(micros, micros_)};
    checker_.add(event, version, micros, field[8]);
  }

  ChainChecker& checker_;
  bool header_done_ = false;
  std::array<char, 36> uuid_{};
  std::array<char, 24> version_{};
  std::array<char, 24> schema_{};
  std::array<char, 24> micros_{};
};

// Every stream's chain: the whole store through binary COPY, one stream through a prepared
// statement in single-row mode (COPY takes no parameters).
void verify_chains(LibpqConnection& c, const VerifyOptions& options, Findings& findings,
                   VerifyReport& report) {
  ChainChecker checker(findings, report, options);
  if (!options.stream) {
    BinaryChainRows rows(checker);
    c.copy_out(verify_sql::kChainCopy, [&](std::string_view data) { rows.on_data(data); });
    checker.finish();
    return;
  }
  c.prepare(verify_sql::kChainName, verify_sql::kChain);
  const std::array<const char*, 1> params = {options.stream->c_str()};
  std::string hash;
  c.stream_prepared(verify_sql::kChainName, params, [&](LibpqConnection::Row row) {
    const auto event = event_text(row);
    hash = stored_hash(row[8]);
    checker.add(event, parse_int<std::int64_t>(event.stream_version, "stream version"),
                parse_int<std::int64_t>(event.recorded_micros, "recorded time"), hash);
  });
  checker.finish();
}

bool is_recorded(LibpqConnection& c, const Anchor& anchor) {
  const std::string commit = std::to_string(anchor.position.commit());
  const std::string sequence = std::to_string(anchor.position.sequence());
  const std::string events = std::to_string(anchor.events);
  const std::array<const char*, 4> params = {commit.c_str(), sequence.c_str(), events.c_str(),
                                             anchor.digest.c_str()};
  return is_true(c.exec_prepared(verify_sql::kAnchorRecordedName, params).text(0, 0));
}

detail::Sha256Digest digest_bytes(const Anchor& anchor) {
  std::string bytes;
  if (!detail::decode_bytea("\\x" + anchor.digest, bytes) || bytes.size() != 32) {
    throw InvalidArgumentError("anchor at " + anchor.position.to_string() +
                               ": the digest is not 64 hex digits");
  }
  detail::Sha256Digest digest{};
  std::copy(bytes.begin(), bytes.end(), digest.begin());
  return digest;
}

// The log in global order from the resumed anchor (or the start) to the newest anchor: each
// event's hash recomputed from its content and its stream predecessor's stored hash, and the
// log digest compared at every anchor's position.
void verify_anchors(LibpqConnection& c, const VerifyOptions& options, Findings& findings,
                    VerifyReport& report) {
  if (options.stream) {
    throw InvalidArgumentError("verify: anchors cover the whole log; give no stream with them");
  }
  std::vector<Anchor> anchors = options.anchors;
  std::stable_sort(anchors.begin(), anchors.end(),
                   [](const Anchor& a, const Anchor& b) { return a.position < b.position; });
  for (const auto& anchor : anchors) report.anchors.push_back({anchor, AnchorOutcome::kVerified});

  // Resume from the newest anchor but the last that the database recorded: an anchor the
  // auditor kept and the store produced. Its prefix was proved by the run that verified it.
  std::size_t next = 0;  // the first anchor to check
  Position from;
  std::int64_t events = 0;
  detail::LogDigest digest;
  if (!options.full && anchors.size() > 1 &&
      is_true(c.exec(verify_sql::kAnchorsPresent).text(0, 0))) {
    c.prepare(verify_sql::kAnchorRecordedName, verify_sql::kAnchorRecorded);
    for (std::size_t i = anchors.size() - 1; i-- > 0;) {
      if (!is_recorded(c, anchors[i])) continue;
      for (std::size_t j = 0; j < i; ++j) report.anchors[j].outcome = AnchorOutcome::kCovered;
      report.anchors[i].outcome = AnchorOutcome::kResumed;
      next = i + 1;
      from = anchors[i].position;
      events = anchors[i].events;
      digest.restart(digest_bytes(anchors[i]));
      break;
    }
  }

  const auto settle = [&](std::size_t index) {
    const auto& anchor = anchors[index];
    if (events == anchor.events && detail::to_hex(digest.value()) == anchor.digest) return;
    report.anchors[index].outcome = AnchorOutcome::kMismatch;
    findings.add(FindingKind::kAnchorMismatch,
                 "anchor at " + anchor.position.to_string() + " taken " + anchor.time + " (" +
                     std::to_string(anchor.events) + " events, digest " + anchor.digest +
                     ") no longer matches: the log up to that position now has " +
                     std::to_string(events) + " events and digest " +
                     detail::to_hex(digest.value()) +
                     "; events at or before it were changed, removed, inserted or reordered");
  };

  if (next < anchors.size()) {
    c.prepare(verify_sql::kLogRangeName, verify_sql::kLogRange);
    const std::string from_commit = std::to_string(from.commit());
    const std::string from_sequence = std::to_string(from.sequence());
    const std::string to_commit = std::to_string(anchors.back().position.commit());
    const std::string to_sequence = std::to_string(anchors.back().position.sequence());
    const std::array<const char*, 4> params = {from_commit.c_str(), from_sequence.c_str(),
                                               to_commit.c_str(), to_sequence.c_str()};
    detail::EventHasher hasher;
    std::unordered_set<std::string> streams;
    std::string previous_hash;
    c.stream_prepared(verify_sql::kLogRangeName, params, [&](LibpqConnection::Row row) {
      const auto event = event_text(row);
      const Position position(parse_int<std::uint64_t>(row[9], "transaction id"),
                              parse_int<std::int64_t>(row[10], "global position"));
      while (next < anchors.size() && anchors[next].position < position) settle(next++);
      const auto version = parse_int<std::int64_t>(event.stream_version, "stream version");
      const std::string hash = stored_hash(row[8]);
      const std::string stream(event.stream_id);
      const bool has_previous = row[11].data() != nullptr;
      if (version > 1 && !has_previous) {
        findings.add(FindingKind::kVersionGap,
                     "stream " + in_quotes(stream) + " has no version " +
                         std::to_string(version - 1) + " before version " +
                         std::to_string(version) + " (events were removed)",
                     stream, version);
      } else {
        if (has_previous) {
          previous_hash = stored_hash(row[11]);
        } else {
          previous_hash.clear();
        }
        ++report.events_hashed;
        if (!same(hasher.hash(previous_hash, event), hash)) {
          findings.add(FindingKind::kHashMismatch, mismatch_message(stream, version), stream,
                       version);
        }
      }
      digest.add(position.commit(), position.sequence(), hash);
      ++events;
      ++report.events;
      report_progress(options, report.events, false);
      streams.insert(stream);
    });
    report.streams = static_cast<std::int64_t>(streams.size());
    report_progress(options, report.events, true);
  }
  while (next < anchors.size()) settle(next++);
  report.digest = detail::to_hex(digest.value());
}

}  // namespace

const char* to_string(FindingKind kind) noexcept {
  switch (kind) {
    case FindingKind::kHashMismatch:
      return "hash-mismatch";
    case FindingKind::kVersionGap:
      return "version-gap";
    case FindingKind::kGuardDisabled:
      return "guard-disabled";
    case FindingKind::kTransactionIdsAhead:
      return "transaction-ids-ahead";
    case FindingKind::kTriggerMissing:
      return "trigger-missing";
    case FindingKind::kTriggerUnexpected:
      return "trigger-unexpected";
    case FindingKind::kFunctionChanged:
      return "function-changed";
    case FindingKind::kFunctionMissing:
      return "function-missing";
    case FindingKind::kFunctionUnexpected:
      return "function-unexpected";
    case FindingKind::kFunctionSecurityChanged:
      return "function-security-changed";
    case FindingKind::kExcessPrivilege:
      return "excess-privilege";
    case FindingKind::kRecordedTimeBackwards:
      return "recorded-time-backwards";
    case FindingKind::kAnchorMismatch:
      return "anchor-mismatch";
    case FindingKind::kStreamHeadMismatch:
      return "stream-head-mismatch";
  }
  return "unknown";
}

const char* to_string(AnchorOutcome outcome) noexcept {
  switch (outcome) {
    case AnchorOutcome::kVerified:
      return "verified";
    case AnchorOutcome::kMismatch:
      return "mismatch";
    case AnchorOutcome::kResumed:
      return "resumed";
    case AnchorOutcome::kCovered:
      return "covered";
  }
  return "unknown";
}

VerifyReport verify(const std::string& connection_string, const VerifyOptions& options) {
  if (options.max_findings == 0) {
    throw InvalidArgumentError("verify: max_findings must be at least 1");
  }
  if (!options.anchors.empty() && options.stream) {
    throw InvalidArgumentError("verify: anchors cover the whole log; give no stream with them");
  }
  detail::validate_duration(options.progress_timeout, "VerifyOptions", "progress_timeout", true);
  return detail::with_progress_bounded_connection(
      connection_string, "verify", options.progress_timeout, [&](LibpqConnection& c) {
        c.exec(verify_sql::kClientEncoding);
        c.exec(verify_sql::kBegin);
        VerifyReport report;
        Findings findings(report, options.max_findings);
        if (check_store(c, findings)) check_stream_heads(c, options, findings);
        if (options.anchors.empty()) {
          verify_chains(c, options, findings, report);
        } else {
          verify_anchors(c, options, findings, report);
        }
        c.exec(verify_sql::kCommit);
        return report;
      });
}

}  // namespace annals::postgres
