#include "workloads.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "annals/eventstore/types.hpp"
#include "annals/postgres/postgres_event_store.hpp"
#include "annals/postgres/verify.hpp"

namespace annals::bench {
namespace {

constexpr std::size_t kParamsPerRow = 8;
constexpr std::uint64_t kPageSize = 1000;

// Exactly annals.events of sql/0001 minus the CHECK constraints (and the append-only
// triggers, which never fire on INSERT).
// The ceiling's table is annals.events' columns, identity, primary key, unique constraint and
// indexes, copied from the migrated schema so the two can never drift apart; CHECK
// constraints, triggers and everything else of the store's logic are left out.
constexpr const char* kCeilingDdl = R"(
CREATE SCHEMA bench_ceiling;
CREATE TABLE bench_ceiling.events
  (LIKE annals.events INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES);
)";

std::string insert_sql(int batch, bool notify) {
  std::string sql =
      "INSERT INTO bench_ceiling.events (transaction_id, stream_id, stream_version, event_id, "
      "event_type, schema_version, data, metadata, recorded_at, hash) VALUES ";
  for (int row = 0; row < batch; ++row) {
    const int p = row * static_cast<int>(kParamsPerRow);
    if (row > 0) sql += ", ";
    sql += "(pg_current_xact_id()";
    for (int k = 1; k <= 7; ++k) sql += ", $" + std::to_string(p + k);
    sql += ", now(), $" + std::to_string(p + 8) + ")";
  }
  if (notify) {
    sql = "WITH ins AS (" + sql + " RETURNING 1) SELECT pg_notify('bench_ceiling', '') FROM ins";
  }
  return sql;
}

// The store's read_all statement (eventstore/postgres/src/sql.hpp, kReadAll), copied. Its
// ORDER BY must name the table's columns (`e.`): a bare `transaction_id` would name the text
// output column and sort the whole table as text for every page.
// The columns a reader in `format` selects.
const char* columns(ResultFormat format) {
  return format == ResultFormat::kNative ? kNativeColumns : kEventColumns;
}

// PQexecPrepared's resultFormat for `format`.
int wire_format(ResultFormat format) { return format == ResultFormat::kText ? 0 : 1; }

std::string keyset_sql(ResultFormat format) {
  return std::string("SELECT ") + columns(format) +
         " FROM annals.events e"
         " WHERE (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)"
         "   AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
         " ORDER BY e.transaction_id, e.global_position LIMIT $3";
}

void ensure_full_page(std::uint64_t got, std::uint64_t wanted) {
  if (got != wanted) {
    throw std::runtime_error("the log ended early: a page returned " + std::to_string(got) +
                             " events instead of " + std::to_string(wanted));
  }
}

// The store's read_stream columns over one stream's versions $2 to $3, in version order: a
// range scan of the primary key (stream_id, stream_version), what the store's read_stream
// statement (sql.hpp, kReadStreamForward) reads for a whole stream.
std::string stream_range_sql(ResultFormat format) {
  return std::string("SELECT ") + columns(format) +
         " FROM annals.events e"
         " WHERE e.stream_id = $1 AND e.stream_version BETWEEN $2 AND $3"
         " ORDER BY e.stream_version";
}

// A bigint field of a binary-format result (8 bytes, network order).
std::int64_t binary_int8(const PgResult& result, int row, int column) {
  if (PQgetlength(result.get(), row, column) != 8) {
    throw std::runtime_error("expected an 8-byte binary bigint in column " +
                             std::to_string(column));
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(PQgetvalue(result.get(), row, column));
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | bytes[i];
  return static_cast<std::int64_t>(value);
}

// Every field of every row was read (PgResult::touch_all_fields); a non-empty result always has
// a positive checksum, and checking it keeps the reads from being optimised away.
void ensure_touched(std::uint64_t checksum) {
  if (checksum == 0) throw std::logic_error("a ceiling read touched no field");
}

// Pages of 1,000 with the store's keyset query through raw libpq: read_all_keyset_raw (text,
// only the cursor read) and the ceiling of read_all (`touch`: every field read, text or binary).
ReadStep keyset_pager(PgConnection& connection, std::uint64_t limit, ResultFormat format,
                      bool touch) {
  const std::string statement = std::string("raw_keyset_") + format_name(format);
  connection.prepare(statement, keyset_sql(format), {});
  struct Cursor {
    std::string commit = "0";
    std::string sequence = "0";
    std::uint64_t read = 0;
  };
  auto cursor = std::make_shared<Cursor>();
  return [&connection, limit, format, touch, statement, cursor]() -> std::uint64_t {
    if (cursor->read >= limit) *cursor = Cursor{};
    const auto wanted = std::min(kPageSize, limit - cursor->read);
    const std::string count = std::to_string(wanted);
    const std::array<const char*, 3> values{cursor->commit.c_str(), cursor->sequence.c_str(),
                                            count.c_str()};
    const auto page = connection.exec_prepared(statement.c_str(), 3, values.data(), nullptr,
                                               nullptr, PGRES_TUPLES_OK, wire_format(format));
    const auto rows = static_cast<std::uint64_t>(page.rows());
    ensure_full_page(rows, wanted);
    if (touch) ensure_touched(page.touch_all_fields());
    const int last = page.rows() - 1;
    // Column 0 is `transaction_id::text` (a text value's binary form is its text), or in
    // native form the xid8 itself (8 bytes, network order).
    if (format == ResultFormat::kNative) {
      cursor->commit = std::to_string(static_cast<std::uint64_t>(binary_int8(page, last, 0)));
    } else {
      cursor->commit.assign(PQgetvalue(page.get(), last, 0),
                            static_cast<std::size_t>(PQgetlength(page.get(), last, 0)));
    }
    cursor->sequence = format == ResultFormat::kText ? page.text(last, 1)
                                                     : std::to_string(binary_int8(page, last, 1));
    cursor->read += rows;
    return rows;
  };
}

// One ceiling writer: its own connection, one prepared INSERT, its own stream.
class CeilingWriter {
 public:
  CeilingWriter(const std::string& conninfo, const Payload& payload, int batch,
                std::string stream_id, bool notify)
      : connection_(conninfo),
        payload_(payload),
        batch_(static_cast<std::size_t>(batch)),
        notify_(notify),
        stream_id_(std::move(stream_id)),
        values_(batch_ * kParamsPerRow),
        pointers_(batch_ * kParamsPerRow),
        lengths_(batch_ * kParamsPerRow, 0),
        formats_(batch_ * kParamsPerRow, 0) {
    std::vector<Oid> types;
    for (std::size_t row = 0; row < batch_; ++row) {
      types.insert(types.end(), {kTextOid, kInt8Oid, kUuidOid, kTextOid, kInt4Oid, kJsonbOid,
                                 kJsonbOid, kByteaOid});
    }
    connection_.prepare("ceiling_insert", insert_sql(batch, notify), types);
    hash_.fill('\x5a');  // a constant 32-byte SHA-256-sized value, sent as binary bytea
    for (std::size_t row = 0; row < batch_; ++row) {
      const std::size_t p = row * kParamsPerRow;
      formats_[p + 7] = 1;
      lengths_[p + 7] = static_cast<int>(hash_.size());
    }
  }

  std::uint64_t step() {
    for (std::size_t row = 0; row < batch_; ++row) {
      const std::size_t p = row * kParamsPerRow;
      values_[p + 1] = std::to_string(++version_);
      values_[p + 2] = EventId::generate().to_string();
      values_[p + 5] = payload_.data_text(++counter_);
      pointers_[p + 0] = stream_id_.c_str();
      pointers_[p + 1] = values_[p + 1].c_str();
      pointers_[p + 2] = values_[p + 2].c_str();
      pointers_[p + 3] = payload_.event_type.c_str();
      pointers_[p + 4] = "1";
      pointers_[p + 5] = values_[p + 5].c_str();
      pointers_[p + 6] = payload_.metadata_text.c_str();
      pointers_[p + 7] = hash_.data();
    }
    connection_.exec_prepared("ceiling_insert", static_cast<int>(pointers_.size()),
                              pointers_.data(), lengths_.data(), formats_.data(),
                              notify_ ? PGRES_TUPLES_OK : PGRES_COMMAND_OK);
    return batch_;
  }

 private:
  PgConnection connection_;
  const Payload& payload_;
  std::size_t batch_;
  bool notify_;
  std::string stream_id_;
  std::vector<std::string> values_;
  std::vector<const char*> pointers_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  std::array<char, 32> hash_{};
  std::int64_t version_ = 0;
  std::uint64_t counter_ = 0;
};

std::vector<NewEvent> make_events(const Payload& payload, int batch, std::uint64_t& counter) {
  std::vector<NewEvent> events;
  events.reserve(static_cast<std::size_t>(batch));
  for (int k = 0; k < batch; ++k) {
    NewEvent event;
    event.type = payload.event_type;
    event.data = payload.data;
    event.metadata = payload.metadata;
    event.data["n"] = ++counter;
    events.push_back(std::move(event));
  }
  return events;
}

// The events of make_events, with data and metadata as the text the ceiling sends.
std::vector<NewEvent> make_text_events(const Payload& payload, int batch, std::uint64_t& counter) {
  std::vector<NewEvent> events;
  events.reserve(static_cast<std::size_t>(batch));
  for (int k = 0; k < batch; ++k) {
    NewEvent event;
    event.type = payload.event_type;
    event.data_json = payload.data_text(++counter);
    event.metadata_json = payload.metadata_text;
    events.push_back(std::move(event));
  }
  return events;
}

}  // namespace

const char* append_input_name(AppendInput input) noexcept {
  switch (input) {
    case AppendInput::kJsonText:
      return "json_text";
    case AppendInput::kTree:
      return "tree";
  }
  return "?";
}

void create_ceiling_table(PgConnection& connection) { connection.exec(kCeilingDdl); }

MakeStep ceiling_insert(std::string conninfo, const Payload& payload, int batch,
                        std::string stream_prefix, bool notify) {
  return [conninfo = std::move(conninfo), &payload, batch, stream_prefix = std::move(stream_prefix),
          notify](int index) -> Step {
    auto writer = std::make_shared<CeilingWriter>(
        conninfo, payload, batch, stream_prefix + "-" + std::to_string(index), notify);
    return [writer] { return writer->step(); };
  };
}

std::uint64_t ceiling_copy_pass(PgConnection& connection, std::uint64_t limit) {
  const std::string sql = std::string("COPY (SELECT ") + kEventColumns +
                          " FROM annals.events e ORDER BY e.transaction_id, e.global_position"
                          " LIMIT " +
                          std::to_string(limit) + ") TO STDOUT";
  return connection.copy_out_rows(sql);
}

std::uint64_t verify_copy_pass(PgConnection& connection) {
  // The statement of eventstore/postgres/src/verify_sql.hpp (kChain), copied, unfiltered.
  return connection.copy_out_rows(
      "COPY (SELECT e.event_id, e.stream_id, e.stream_version, e.event_type, e.schema_version,"
      " e.data, e.metadata, ((extract(epoch FROM e.recorded_at) * 1000000)::bigint), e.hash"
      " FROM annals.events e ORDER BY e.stream_id, e.stream_version) TO STDOUT");
}

std::uint64_t verify_pass(const std::string& conninfo) {
  const auto report = postgres::verify(conninfo);
  if (!report.ok()) {
    throw std::runtime_error("verify found a problem: " + report.findings.front().message);
  }
  return static_cast<std::uint64_t>(report.events);
}

const char* format_name(ResultFormat format) noexcept {
  switch (format) {
    case ResultFormat::kText:
      return "text";
    case ResultFormat::kBinary:
      return "binary";
    case ResultFormat::kNative:
      return "native";
  }
  return "?";
}

ReadStep raw_keyset_reader(PgConnection& connection, std::uint64_t limit) {
  return keyset_pager(connection, limit, ResultFormat::kText, false);
}

ReadStep ceiling_keyset_reader(PgConnection& connection, std::uint64_t limit, ResultFormat format) {
  return keyset_pager(connection, limit, format, true);
}

ReadStep ceiling_stream_reader(PgConnection& connection, std::string stream, std::uint64_t events,
                               ResultFormat format) {
  struct Query {
    std::string statement;
    std::string stream;
    std::string first;
    std::string last;
  };
  auto query = std::make_shared<Query>(Query{std::string("ceiling_stream_") + format_name(format),
                                             std::move(stream), "1", std::to_string(events)});
  connection.prepare(query->statement, stream_range_sql(format), {});
  return [&connection, query, events, format]() -> std::uint64_t {
    const std::array<const char*, 3> values{query->stream.c_str(), query->first.c_str(),
                                            query->last.c_str()};
    const auto rows = connection.exec_prepared(query->statement.c_str(), 3, values.data(), nullptr,
                                               nullptr, PGRES_TUPLES_OK, wire_format(format));
    const auto count = static_cast<std::uint64_t>(rows.rows());
    if (count != events) {
      throw std::runtime_error("stream " + query->stream + " returned " + std::to_string(count) +
                               " events instead of " + std::to_string(events));
    }
    ensure_touched(rows.touch_all_fields());
    return count;
  };
}

std::unique_ptr<EventStore> open_store(const std::string& conninfo, std::size_t pool_size,
                                       bool notify, bool group_commit) {
  postgres::PostgresEventStoreOptions options;
  options.connection_string = conninfo;
  options.pool_size = pool_size;
  options.notify_on_append = notify;
  if (!group_commit) options.group_commit_max_appends = 1;
  return postgres::make_postgres_event_store(std::move(options));
}

MakeStep store_append(EventStore& store, const Payload& payload, int batch,
                      std::string stream_prefix, AppendInput input) {
  return [&store, &payload, batch, stream_prefix = std::move(stream_prefix),
          input](int index) -> Step {
    struct Writer {
      StreamId stream;
      StreamVersion version = 0;
      std::uint64_t counter = 0;
    };
    auto writer =
        std::make_shared<Writer>(Writer{StreamId(stream_prefix + "-" + std::to_string(index))});
    return [writer, &store, &payload, batch, input]() -> std::uint64_t {
      auto events = input == AppendInput::kJsonText
                        ? make_text_events(payload, batch, writer->counter)
                        : make_events(payload, batch, writer->counter);
      auto result =
          store.append(writer->stream, ExpectedVersion::exact(writer->version), std::move(events));
      writer->version = result.last_version;
      return static_cast<std::uint64_t>(batch);
    };
  };
}

ReadStep store_reader(EventStore& store, std::uint64_t limit) {
  struct Cursor {
    Position after = Position::start();
    std::uint64_t read = 0;
  };
  auto cursor = std::make_shared<Cursor>();
  return [&store, limit, cursor]() -> std::uint64_t {
    if (cursor->read >= limit) *cursor = Cursor{};
    ReadAllOptions options;
    options.after = cursor->after;
    options.max_count = static_cast<std::size_t>(std::min(kPageSize, limit - cursor->read));
    const auto events = store.read_all(options);
    ensure_full_page(events.size(), options.max_count);
    cursor->after = events.back().position;
    cursor->read += events.size();
    return events.size();
  };
}

ReadStep store_stream_reader(EventStore& store, StreamId stream, std::uint64_t events) {
  return [&store, stream = std::move(stream), events]() -> std::uint64_t {
    const auto read = store.read_stream(stream);
    if (read.size() != events || read.front().version != 1 ||
        read.back().version != static_cast<StreamVersion>(events)) {
      throw std::runtime_error("read_stream of " + stream.value() + " returned " +
                               std::to_string(read.size()) + " events, not versions 1 to " +
                               std::to_string(events));
    }
    return read.size();
  };
}

void fill_log(EventStore& store, const Payload& payload, std::uint64_t events) {
  constexpr int kBatch = 100;
  constexpr StreamVersion kPerStream = 10'000;
  std::uint64_t counter = 0;
  std::uint64_t written = 0;
  for (int s = 0; written < events; ++s) {
    const StreamId stream("fill-" + std::to_string(s));
    for (StreamVersion v = 0; v < kPerStream && written < events; v += kBatch) {
      store.append(stream, ExpectedVersion::exact(v), make_events(payload, kBatch, counter));
      written += kBatch;
    }
  }
}

void fill_stream(EventStore& store, const Payload& payload, const StreamId& stream,
                 std::uint64_t events) {
  constexpr std::uint64_t kBatch = 100;
  std::uint64_t counter = 0;
  for (std::uint64_t written = 0; written < events;) {
    const auto batch = std::min(kBatch, events - written);
    store.append(stream, ExpectedVersion::exact(static_cast<StreamVersion>(written)),
                 make_events(payload, static_cast<int>(batch), counter));
    written += batch;
  }
}

}  // namespace annals::bench
