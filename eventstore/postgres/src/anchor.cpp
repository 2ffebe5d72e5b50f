// annals::postgres::take_anchor and the anchor's JSON form (ARCHITECTURE decision 8).
#include "annals/postgres/anchor.hpp"

#include <array>
#include <cctype>
#include <string>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/json_limits.hpp"
#include "database_checks.hpp"
#include "event_hasher.hpp"
#include "libpq_connection.hpp"
#include "pooled_call.hpp"
#include "sql.hpp"
#include "verify_sql.hpp"

namespace annals::postgres {
namespace {

using detail::LibpqConnection;
using detail::parse_int;

void record(LibpqConnection& c, const Anchor& anchor) {
  if (c.exec(verify_sql::kAnchorsPresent).text(0, 0) != "t") {
    throw NotFoundError("annals.anchors is missing from the database; run `annals migrate`");
  }
  c.prepare(verify_sql::kRecordAnchorName, verify_sql::kRecordAnchor);
  const std::string commit = std::to_string(anchor.position.commit());
  const std::string sequence = std::to_string(anchor.position.sequence());
  const std::string events = std::to_string(anchor.events);
  const std::array<const char*, 5> params = {commit.c_str(), sequence.c_str(), events.c_str(),
                                             anchor.digest.c_str(), anchor.time.c_str()};
  c.exec_prepared(verify_sql::kRecordAnchorName, params);
}

}  // namespace

Anchor take_anchor(const std::string& connection_string, const AnchorOptions& options) {
  detail::validate_duration(options.progress_timeout, "AnchorOptions", "progress_timeout", true);
  return detail::with_progress_bounded_connection(
      connection_string, "anchor", options.progress_timeout, [&](LibpqConnection& c) {
        c.exec(options.record ? verify_sql::kBeginWritable : verify_sql::kBegin);
        if (c.exec(sql::kSchemaPresent).text(0, 0) != "t") {
          throw NotFoundError(
              "the annals schema is missing from the database; run `annals migrate`");
        }
        c.prepare(verify_sql::kSettledLogName, verify_sql::kSettledLog);
        Anchor anchor;
        detail::LogDigest digest;
        std::string hash;
        c.stream_prepared(verify_sql::kSettledLogName, {}, [&](LibpqConnection::Row row) {
          anchor.position = Position(parse_int<std::uint64_t>(row[0], "transaction id"),
                                     parse_int<std::int64_t>(row[1], "global position"));
          if (!detail::decode_bytea(row[2], hash)) {
            throw CorruptionError("unreadable stored hash '" + std::string(row[2]) + "'");
          }
          digest.add(anchor.position.commit(), anchor.position.sequence(), hash);
          ++anchor.events;
        });
        anchor.digest = detail::to_hex(digest.value());
        anchor.time = std::string(c.exec(verify_sql::kNow).text(0, 0));
        if (options.record) record(c, anchor);
        c.exec(verify_sql::kCommit);
        return anchor;
      });
}

std::string to_json(const Anchor& anchor) {
  return nlohmann::json{{"position", anchor.position.to_string()},
                        {"events", anchor.events},
                        {"digest", anchor.digest},
                        {"time", anchor.time}}
      .dump();
}

Anchor parse_anchor(std::string_view json) {
  check_json_text_depth(json, "anchor");  // a file given to `annals verify --anchor`
  const auto document = nlohmann::json::parse(json, nullptr, false);
  if (document.is_discarded() || !document.is_object()) {
    throw InvalidArgumentError("anchor: not a JSON object");
  }
  const auto field = [&](const char* name, auto check) -> const nlohmann::json& {
    const auto found = document.find(name);
    if (found == document.end() || !check(*found)) {
      throw InvalidArgumentError(std::string("anchor: \"") + name + "\" is missing or malformed");
    }
    return *found;
  };
  const auto is_string = [](const nlohmann::json& j) { return j.is_string(); };
  Anchor anchor;
  anchor.position = Position::parse(field("position", is_string).get<std::string>());
  anchor.events =
      field("events", [](const nlohmann::json& j) {
        return j.is_number_unsigned() || (j.is_number_integer() && j.get<std::int64_t>() >= 0);
      }).get<std::int64_t>();
  anchor.digest = field("digest", is_string).get<std::string>();
  for (auto& ch : anchor.digest)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (anchor.digest.size() != 64 ||
      anchor.digest.find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw InvalidArgumentError("anchor: \"digest\" is not 64 hex digits");
  }
  anchor.time = field("time", is_string).get<std::string>();
  return anchor;
}

}  // namespace annals::postgres
