#include "shipped_functions.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

#include "embedded_migrations.hpp"

namespace annals::postgres::detail {
namespace {

// The end of the statement that starts at `from`: the first ';' outside quotes.
std::size_t statement_end(const std::string& sql, std::size_t from) {
  bool quoted = false;
  for (std::size_t i = from; i < sql.size(); ++i) {
    if (sql[i] == '\'') quoted = !quoted;
    if (sql[i] == ';' && !quoted) return i;
  }
  return sql.size();
}

// The position after the parenthesis that closes the one at `open`.
std::size_t after_closing_paren(const std::string& sql, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < sql.size(); ++i) {
    if (sql[i] == '(') ++depth;
    if (sql[i] == ')' && --depth == 0) return i + 1;
  }
  return sql.size();
}

void parse_attributes(const std::string& attributes, ShippedFunction& function) {
  static const std::regex kDefiner(R"(\bSECURITY\s+DEFINER\b)", std::regex::icase);
  static const std::regex kSet(
      R"(\bSET\s+([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=|\bTO\b)\s*([\s\S]*?)(?=\s+(?:LANGUAGE|SECURITY|STABLE|IMMUTABLE|VOLATILE|PARALLEL|STRICT|CALLED|RETURNS|COST|ROWS|SET|LEAKPROOF|NOT|EXTERNAL|WINDOW|SUPPORT)\b|\s*$))",
      std::regex::icase);
  function.security_definer = std::regex_search(attributes, kDefiner);
  for (auto it = std::sregex_iterator(attributes.begin(), attributes.end(), kSet);
       it != std::sregex_iterator(); ++it) {
    function.settings.push_back(normalize_setting((*it)[1].str(), (*it)[2].str()));
  }
  std::sort(function.settings.begin(), function.settings.end());
}

// Applies the `ALTER FUNCTION annals.<name>(...) ...;` statements of `sql` to functions parsed
// so far: SECURITY DEFINER/INVOKER and SET clauses change what the server will hold (migration
// 0005 makes append_events SECURITY DEFINER and pins search_path this way).
void apply_alters(const std::string& sql, std::map<std::string, ShippedFunction>& functions) {
  static const std::regex kAlter(R"(\bALTER\s+FUNCTION\s+annals\.([A-Za-z_][A-Za-z0-9_]*)\s*\()",
                                 std::regex::icase);
  static const std::regex kInvoker(R"(\bSECURITY\s+INVOKER\b)", std::regex::icase);
  std::size_t from = 0;
  std::smatch alter;
  while (std::regex_search(sql.begin() + static_cast<std::ptrdiff_t>(from), sql.end(), alter,
                           kAlter)) {
    const std::size_t start = from + static_cast<std::size_t>(alter.position(0));
    const std::size_t open = start + static_cast<std::size_t>(alter.length(0)) - 1;
    const std::size_t after_args = after_closing_paren(sql, open);
    const std::size_t end = statement_end(sql, after_args);
    from = end;
    const auto found = functions.find(alter[1].str());
    if (found == functions.end()) continue;
    const std::string clauses = sql.substr(after_args, end - after_args);
    ShippedFunction altered;
    parse_attributes(clauses, altered);
    auto& function = found->second;
    if (altered.security_definer) function.security_definer = true;
    if (std::regex_search(clauses, kInvoker)) function.security_definer = false;
    for (const auto& setting : altered.settings) {
      const auto name = setting.substr(0, setting.find('='));
      std::erase_if(function.settings,
                    [&](const std::string& s) { return s.substr(0, s.find('=')) == name; });
      function.settings.push_back(setting);
    }
    std::sort(function.settings.begin(), function.settings.end());
  }
}

}  // namespace

std::string normalize_setting(std::string_view name, std::string_view value) {
  std::string out;
  for (const char c : name) {
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  out.push_back('=');
  for (const char c : value) {
    if (std::isspace(static_cast<unsigned char>(c)) != 0 || c == '\'' || c == '"') continue;
    out.push_back(c);
  }
  return out;
}

std::map<std::string, ShippedFunction> parse_shipped_functions(
    const std::vector<std::string_view>& migrations) {
  static const std::regex kCreate(
      R"(\bCREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+annals\.([A-Za-z_][A-Za-z0-9_]*)\s*\()",
      std::regex::icase);
  static const std::regex kBodyStart(R"(\bAS\s+\$([A-Za-z0-9_]*)\$)", std::regex::icase);
  std::map<std::string, ShippedFunction> functions;
  for (const auto migration : migrations) {
    const std::string sql(migration);
    std::size_t from = 0;
    std::smatch create;
    while (std::regex_search(sql.begin() + static_cast<std::ptrdiff_t>(from), sql.end(), create,
                             kCreate)) {
      const std::size_t name_start = from + static_cast<std::size_t>(create.position(0));
      const std::size_t open = name_start + static_cast<std::size_t>(create.length(0)) - 1;
      const std::size_t after_args = after_closing_paren(sql, open);
      std::smatch body_start;
      if (!std::regex_search(sql.begin() + static_cast<std::ptrdiff_t>(after_args), sql.end(),
                             body_start, kBodyStart)) {
        break;
      }
      const std::size_t as_at = after_args + static_cast<std::size_t>(body_start.position(0));
      const std::size_t body_from = as_at + static_cast<std::size_t>(body_start.length(0));
      const std::string tag = "$" + body_start[1].str() + "$";
      const std::size_t body_to = sql.find(tag, body_from);
      if (body_to == std::string::npos) break;
      const std::size_t end = statement_end(sql, body_to + tag.size());
      ShippedFunction function;
      function.body = sql.substr(body_from, body_to - body_from);
      parse_attributes(sql.substr(after_args, as_at - after_args) + " " +
                           sql.substr(body_to + tag.size(), end - body_to - tag.size()),
                       function);
      functions[create[1].str()] = std::move(function);
      from = end;
    }
    apply_alters(sql, functions);
  }
  return functions;
}

const std::map<std::string, ShippedFunction>& shipped_functions() {
  static const auto functions = [] {
    std::vector<std::string_view> sql;
    for (const auto& migration : embedded_migrations()) sql.emplace_back(migration.sql);
    return parse_shipped_functions(sql);
  }();
  return functions;
}

}  // namespace annals::postgres::detail
