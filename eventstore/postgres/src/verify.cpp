// annals::postgres::verify: recompute the hash chains of annals.events (ARCHITECTURE decision 8).
#include "annals/postgres/verify.hpp"

#include <cstdint>
#include <string>

#include <pqxx/pqxx>

#include "annals/eventstore/error.hpp"
#include "database_checks.hpp"
#include "error_translation.hpp"
#include "verify_sql.hpp"

namespace annals::postgres {
namespace {

FindingKind parse_kind(const std::string& kind) {
  if (kind == "version-gap") return FindingKind::kVersionGap;
  return FindingKind::kHashMismatch;
}

std::string describe(FindingKind kind, const std::string& stream, StreamVersion version,
                     const pqxx::field& previous) {
  if (kind == FindingKind::kHashMismatch) {
    return "stream \"" + stream + "\" version " + std::to_string(version) +
           ": the stored hash does not match the event's stored bytes and its predecessor's "
           "hash (the event, or the hash of an earlier event, was changed)";
  }
  if (previous.is_null()) {
    return "stream \"" + stream + "\" starts at version " + std::to_string(version) +
           " instead of 1 (its first events were removed)";
  }
  return "stream \"" + stream + "\" jumps from version " + previous.c_str() + " to " +
         std::to_string(version) + " (events were removed)";
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
  }
  return "unknown";
}

VerifyReport verify(const std::string& connection_string, const VerifyOptions& options) {
  if (options.max_findings == 0) {
    throw InvalidArgumentError("verify: max_findings must be at least 1");
  }
  return detail::with_connection(connection_string, "verify", [&](pqxx::connection& c) {
    // One snapshot for every query, so counts, digest and findings describe the same history.
    pqxx::transaction<pqxx::repeatable_read, pqxx::readwrite_policy::read_only> tx(c);
    const auto ahead = detail::check_database(tx);
    VerifyReport report;

    const auto guards = tx.exec(verify_sql::kGuards);
    if (guards.size() < 2) {
      report.findings.push_back(
          {.kind = FindingKind::kGuardDisabled,
           .stream_id = std::nullopt,
           .version = std::nullopt,
           .message = "an append-only trigger of annals.events is missing or disabled: "
                      "UPDATE, DELETE or TRUNCATE of events may not be refused"});
    }
    if (ahead) {
      report.findings.push_back(
          {.kind = FindingKind::kTransactionIdsAhead,
           .stream_id = std::nullopt,
           .version = std::nullopt,
           .message = "stored transaction ids (up to " + std::to_string(ahead->stored) +
                      ") are ahead of this server's next one (" + std::to_string(ahead->next) +
                      "): the database was restored into a new cluster; readers of the global "
                      "log would misorder events (see docs/schema.md)"});
    }

    const auto limit = static_cast<std::int64_t>(options.max_findings) + 1;
    const auto rows = tx.exec_params(verify_sql::kFindings, options.stream, limit);
    for (const auto& row : rows) {
      if (report.findings.size() >= options.max_findings) {
        report.truncated = true;
        break;
      }
      const std::string stream = row[0].c_str();
      const auto version = row[1].as<std::int64_t>();
      const FindingKind kind = parse_kind(row[2].c_str());
      report.findings.push_back({.kind = kind,
                                 .stream_id = stream,
                                 .version = version,
                                 .message = describe(kind, stream, version, row[3])});
    }

    const auto summary = tx.exec_params1(verify_sql::kSummary, options.stream);
    report.streams = summary[0].as<std::int64_t>();
    report.events = summary[1].as<std::int64_t>();
    report.digest = summary[2].c_str();
    tx.commit();
    return report;
  });
}

}  // namespace annals::postgres
