// export_log: the settled global log as NDJSON, page by page (annals/postgres/log_transfer.hpp).
#include <array>
#include <chrono>
#include <ostream>
#include <string>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/types.hpp"
#include "annals/postgres/log_transfer.hpp"
#include "libpq_connection.hpp"
#include "log_line.hpp"
#include "parse_int.hpp"
#include "pooled_call.hpp"

namespace annals::postgres {
namespace {

constexpr const char* kPageName = "annals_export_page";
// The settled log after ($1, $2), as sql.hpp's kReadAllFiltered reads it, with every stored
// column in its text form; the time as microseconds, as the hash covers it.
constexpr const char* kPage =
    "SELECT e.transaction_id::text, e.global_position, e.stream_id, e.stream_version,"
    "       e.event_id::text, e.event_type, e.schema_version, e.data::text, e.metadata::text,"
    "       ((extract(epoch FROM e.recorded_at) * 1000000)::bigint)::text,"
    "       encode(e.hash, 'hex')"
    "  FROM annals.events e"
    " WHERE (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)"
    "   AND e.transaction_id < annals.visible_below()"
    "   AND ($3::text IS NULL OR split_part(e.stream_id, '-', 1) = $3::text)"
    " ORDER BY e.transaction_id, e.global_position LIMIT 1000";
constexpr int kPageSize = 1000;
constexpr std::chrono::milliseconds kProgressTimeout{60000};

void check_category(const std::optional<std::string>& category) {
  if (!category) return;
  if (category->empty() || category->find('-') != std::string::npos ||
      category->find('\0') != std::string::npos) {
    throw InvalidArgumentError(
        "export: a category is a non-empty stream id prefix without '-': \"" + *category + "\"");
  }
}

Position position_of(const detail::LibpqConnection::Result& rows, int row) {
  return Position(detail::parse_int<std::uint64_t>(rows.text(row, 0), "transaction id"),
                  detail::parse_int<std::int64_t>(rows.text(row, 1), "global position"));
}

detail::LogLine line_of(const detail::LibpqConnection::Result& rows, int row,
                        const Position& position) {
  using detail::parse_int;
  return detail::LogLine{
      .stream = std::string(rows.text(row, 2)),
      .version = parse_int<std::int64_t>(rows.text(row, 3), "stream version"),
      .position = position.to_string(),
      .event_id = std::string(rows.text(row, 4)),
      .type = std::string(rows.text(row, 5)),
      .schema_version = parse_int<std::int32_t>(rows.text(row, 6), "schema version"),
      .data = std::string(rows.text(row, 7)),
      .metadata = std::string(rows.text(row, 8)),
      .recorded_micros = parse_int<std::int64_t>(rows.text(row, 9), "recorded time"),
      .transaction_id = std::string(rows.text(row, 0)),
      .hash_hex = std::string(rows.text(row, 10))};
}

}  // namespace

ExportSummary export_log(const std::string& connection_string, const ExportOptions& options,
                         std::ostream& out) {
  check_category(options.category);
  ExportSummary summary{.events = 0, .last = options.after};
  bool output_failed = false;
  detail::with_progress_bounded_connection(
      connection_string, "export", kProgressTimeout, [&](detail::LibpqConnection& c) {
        c.prepare(kPageName, kPage);
        std::string text;
        for (;;) {
          const std::string commit = std::to_string(summary.last.commit());
          const std::string sequence = std::to_string(summary.last.sequence());
          const std::array<const char*, 3> params{
              commit.c_str(), sequence.c_str(),
              options.category ? options.category->c_str() : nullptr};
          const auto rows = c.exec_prepared(kPageName, params);
          text.clear();
          for (int row = 0; row < rows.rows(); ++row) {
            const Position position = position_of(rows, row);
            detail::write_line(line_of(rows, row, position), text);
            summary.last = position;
            ++summary.events;
          }
          out.write(text.data(), static_cast<std::streamsize>(text.size()));
          if (!out) {
            output_failed = true;
            return;
          }
          if (rows.rows() < kPageSize) return;
        }
      });
  if (output_failed) {
    throw InvalidArgumentError("export: writing the output failed after " +
                               std::to_string(summary.events) + " events");
  }
  out.flush();
  return summary;
}

}  // namespace annals::postgres
