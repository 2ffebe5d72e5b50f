// Internal: the functions of schema annals as the embedded migrations define them, so that
// `verify` compares the database's functions with the shipped ones without a second copy of
// their text that could drift.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace annals::postgres::detail {

/// One function as a migration defines it.
struct ShippedFunction {
  /// The body between the dollar quotes, exactly (pg_proc.prosrc stores the same text).
  std::string body;
  /// SECURITY DEFINER given.
  bool security_definer = false;
  /// Each `SET name = value` clause as normalize_setting() gives it, sorted.
  std::vector<std::string> settings;
};

/// Parses every `CREATE [OR REPLACE] FUNCTION annals.<name>(...) ... AS $tag$ body $tag$ ...;`
/// of `migrations` (in order; a later definition of a name replaces an earlier one).
[[nodiscard]] std::map<std::string, ShippedFunction> parse_shipped_functions(
    const std::vector<std::string_view>& migrations);

/// The functions of the embedded migrations (parsed once).
[[nodiscard]] const std::map<std::string, ShippedFunction>& shipped_functions();

/// "name=value" with spaces and quotes removed and the name lower-cased, so that a migration's
/// `SET search_path = pg_catalog, pg_temp` and pg_proc.proconfig's
/// `search_path=pg_catalog, pg_temp` compare equal.
[[nodiscard]] std::string normalize_setting(std::string_view name, std::string_view value);

}  // namespace annals::postgres::detail
