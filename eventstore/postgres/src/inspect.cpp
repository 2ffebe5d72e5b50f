// list_streams and store_stats: what a store holds (annals/postgres/inspect.hpp).
#include "annals/postgres/inspect.hpp"

#include <algorithm>
#include <string>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "database_checks.hpp"
#include "parse_int.hpp"
#include "pooled_call.hpp"

namespace annals::postgres {
namespace {

// A loose index scan over the primary key (stream_id, stream_version): each step finds the
// next stream id after the previous one; the outer LIMIT stops the walk. For each stream, its
// last and first events by version. $1 where to start (>=), $2 prefix, $3 category, $4 limit,
// $5 after (>).
constexpr const char* kListStreams =
    "WITH RECURSIVE ids(stream_id) AS ("
    "  (SELECT e.stream_id::text FROM annals.events e"
    "    WHERE e.stream_id >= $1::text AND ($5::text IS NULL OR e.stream_id > $5::text)"
    "    ORDER BY e.stream_id LIMIT 1)"
    "  UNION ALL"
    "  SELECT (SELECT e.stream_id::text FROM annals.events e WHERE e.stream_id > i.stream_id"
    "           ORDER BY e.stream_id LIMIT 1)"
    "    FROM ids i WHERE i.stream_id IS NOT NULL)"
    "SELECT i.stream_id, l.stream_version, l.event_type::text,"
    "       ((extract(epoch FROM f.recorded_at) * 1000000)::bigint),"
    "       ((extract(epoch FROM l.recorded_at) * 1000000)::bigint)"
    "  FROM ids i"
    "  CROSS JOIN LATERAL (SELECT e.stream_version, e.event_type, e.recorded_at"
    "                        FROM annals.events e WHERE e.stream_id = i.stream_id"
    "                       ORDER BY e.stream_version DESC LIMIT 1) l"
    "  CROSS JOIN LATERAL (SELECT e.recorded_at FROM annals.events e"
    "                       WHERE e.stream_id = i.stream_id"
    "                       ORDER BY e.stream_version LIMIT 1) f"
    " WHERE i.stream_id IS NOT NULL"
    "   AND ($2::text IS NULL OR starts_with(i.stream_id, $2::text))"
    "   AND ($3::text IS NULL OR split_part(i.stream_id, '-', 1) = $3::text)"
    " LIMIT $4::bigint";

// One scan: per category its events, streams, and events of the last minute and hour.
constexpr const char* kCategoryCounts =
    "SELECT split_part(e.stream_id, '-', 1), count(*), count(DISTINCT e.stream_id),"
    "       count(*) FILTER (WHERE e.recorded_at > now() - interval '1 minute'),"
    "       count(*) FILTER (WHERE e.recorded_at > now() - interval '1 hour')"
    "  FROM annals.events e GROUP BY 1";
// Every partition of a partitioned log (sql/0017) counts; pg_partition_tree lists nothing for a
// plain table, and the partitioned parent itself has no storage.
constexpr const char* kBytes =
    "SELECT pg_total_relation_size('annals.events'::regclass)"
    "       + coalesce((SELECT sum(pg_total_relation_size(t.relid))::bigint"
    "                     FROM pg_partition_tree('annals.events'::regclass) t"
    "                    WHERE t.relid <> 'annals.events'::regclass), 0)";
// The newest settled event, as read_all's horizon sees it (sql/0013).
constexpr const char* kHead =
    "SELECT e.transaction_id::text, e.global_position FROM annals.events e"
    " WHERE e.transaction_id < annals.visible_below()"
    " ORDER BY e.transaction_id DESC, e.global_position DESC LIMIT 1";

std::chrono::system_clock::time_point time_of(const pqxx::field& micros) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::microseconds(detail::parse_int<std::int64_t>(micros, "recorded time"))));
}

void check_options(const StreamListOptions& options) {
  if (options.category &&
      (options.category->empty() || options.category->find('-') != std::string::npos)) {
    throw InvalidArgumentError(
        "streams: a category is a non-empty stream id prefix without "
        "'-': \"" +
        *options.category + "\"");
  }
  if (options.prefix && options.prefix->empty()) {
    throw InvalidArgumentError("streams: the prefix must not be empty");
  }
  for (const auto* text : {&options.category, &options.prefix, &options.after}) {
    if (*text && (*text)->find('\0') != std::string::npos) {
      throw InvalidArgumentError("streams: a stream id or prefix cannot contain a NUL character");
    }
  }
}

// Where the walk starts: a stream of the category or with the prefix sorts at or after it.
std::string start_of(const StreamListOptions& options) {
  if (options.prefix && options.category) return std::max(*options.prefix, *options.category);
  if (options.prefix) return *options.prefix;
  if (options.category) return *options.category;
  return "";
}

}  // namespace

std::vector<StreamSummary> list_streams(const std::string& connection_string,
                                        const StreamListOptions& options) {
  check_options(options);
  return detail::with_connection(connection_string, "list streams", [&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    static_cast<void>(detail::check_database(tx));
    const auto limit = static_cast<std::int64_t>(
        std::min<std::size_t>(options.limit, static_cast<std::size_t>(INT64_MAX)));
    const auto rows = tx.exec_params(kListStreams, start_of(options), options.prefix,
                                     options.category, limit, options.after);
    std::vector<StreamSummary> streams;
    streams.reserve(rows.size());
    for (const auto& row : rows) {
      StreamSummary s;
      s.stream = row[0].as<std::string>();
      s.version = detail::parse_int<std::int64_t>(row[1], "stream version");
      s.events = s.version;
      s.last_type = row[2].as<std::string>();
      s.deleted = s.last_type == kStreamDeletedType;
      s.created = time_of(row[3]);
      s.updated = time_of(row[4]);
      streams.push_back(std::move(s));
    }
    return streams;
  });
}

StoreStats store_stats(const std::string& connection_string, std::size_t top) {
  return detail::with_connection(connection_string, "store stats", [&](pqxx::connection& c) {
    pqxx::read_transaction tx(c);
    static_cast<void>(detail::check_database(tx));
    StoreStats stats;
    std::vector<CategoryStats> categories;
    for (const auto& row : tx.exec(kCategoryCounts)) {
      CategoryStats category{.category = row[0].as<std::string>(),
                             .events = detail::parse_int<std::int64_t>(row[1], "event count"),
                             .streams = detail::parse_int<std::int64_t>(row[2], "stream count")};
      stats.events += category.events;
      stats.streams += category.streams;
      stats.events_last_minute += detail::parse_int<std::int64_t>(row[3], "event count");
      stats.events_last_hour += detail::parse_int<std::int64_t>(row[4], "event count");
      categories.push_back(std::move(category));
    }
    std::sort(categories.begin(), categories.end(), [](const auto& a, const auto& b) {
      return a.events != b.events ? a.events > b.events : a.category < b.category;
    });
    if (categories.size() > top) categories.resize(top);
    stats.top_categories = std::move(categories);
    stats.bytes = detail::parse_int<std::int64_t>(tx.exec1(kBytes)[0], "relation size");
    const auto head = tx.exec(kHead);
    if (!head.empty()) {
      stats.head = Position(detail::parse_int<std::uint64_t>(head[0][0], "transaction id"),
                            detail::parse_int<std::int64_t>(head[0][1], "global position"));
    }
    return stats;
  });
}

}  // namespace annals::postgres
