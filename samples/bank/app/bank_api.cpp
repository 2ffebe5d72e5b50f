#include "bank_api.hpp"

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/trace_context.hpp"
#include "time_text.hpp"

namespace bank {
namespace {

using httplib::Request;
using httplib::Response;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxCommandIdBytes = 128;

// The context of a command request: its command id and, when the request carries exactly one
// valid W3C traceparent header, that traceparent, stored in the metadata of every event the
// command appends (docs/observability.md, "Trace context"). A malformed or repeated header is
// ignored: never stored, never an error (tracing must not refuse commands).
annals::CommandContext command_context(const httplib::Request& req, const std::string& command_id) {
  annals::CommandContext context{.command_id = command_id};
  const std::string header(annals::kTraceparentKey);
  if (req.get_header_value_count(header) == 1) {
    if (auto traceparent = annals::parse_traceparent(req.get_header_value(header))) {
      context.extra[header] = std::move(*traceparent);
    }
  }
  return context;
}
constexpr std::string_view kAccountPath = R"(/accounts/([^/]+))";

// A response decided inside a handler: status and message.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  [[nodiscard]] int status() const noexcept { return status_; }

 private:
  int status_;
};

// Bodies may echo client input that is not valid UTF-8: replace it rather than throw.
std::string dump(const json& body) {
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message) {
  reply(res, status, json{{"error", message}});
}

// Client text in an error message: cut, so that a 100 KB id does not come back whole.
std::string excerpt(std::string_view text) {
  constexpr std::size_t kMax = 80;
  if (text.size() <= kMax) return "\"" + std::string(text) + "\"";
  return "\"" + std::string(text.substr(0, kMax)) + "...\" (" + std::to_string(text.size()) +
         " bytes)";
}

std::string account_id_from(const httplib::Request& req) {
  std::string id = req.matches[1];
  if (!is_valid_account_id(id)) {
    throw HttpError(400, "invalid account id " + excerpt(id) + ": use 1 to " +
                             std::to_string(kMaxAccountIdBytes) +
                             " characters out of A-Z a-z 0-9 . _ ~ -");
  }
  return id;
}

// --- Request bodies ---------------------------------------------------------------------

json parse_body(const httplib::Request& req, bool allow_empty) {
  if (req.body.empty()) {
    if (allow_empty) return json::object();
    throw HttpError(400, "the request body must be a JSON object");
  }
  // The parser's callback sees each container open with its depth (0 for the outermost), so
  // the refusal comes before anything deeper is built.
  const json::parser_callback_t limit_depth = [](int depth, json::parse_event_t event, json&) {
    const bool opens =
        event == json::parse_event_t::object_start || event == json::parse_event_t::array_start;
    if (opens && depth >= kMaxRequestJsonDepth) {
      throw HttpError(400, "the request body nests JSON objects and arrays more than " +
                               std::to_string(kMaxRequestJsonDepth) + " levels deep");
    }
    return true;
  };
  json body;
  try {
    body = json::parse(req.body, limit_depth);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number beyond a double (1e999).
    throw HttpError(400, std::string("malformed JSON: ") + e.what());
  }
  if (!body.is_object()) throw HttpError(400, "the request body must be a JSON object");
  return body;
}

void allow_only(const json& body, std::initializer_list<std::string_view> fields) {
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    for (const auto field : fields) known = known || key == field;
    if (!known) throw HttpError(400, "unknown field " + excerpt(key));
  }
}

std::optional<std::string> string_field(const json& body, const std::string& name, bool required) {
  const auto found = body.find(name);
  if (found == body.end()) {
    if (required) throw HttpError(400, "missing field \"" + name + "\"");
    return std::nullopt;
  }
  if (!found->is_string()) throw HttpError(400, "field \"" + name + "\" must be a string");
  return found->get<std::string>();
}

std::int64_t amount_field(const json& body) {
  const auto found = body.find("amount");
  if (found == body.end()) throw HttpError(400, "missing field \"amount\"");
  const std::string rule = "field \"amount\" must be an integer number of cents between 1 and " +
                           std::to_string(kMaxAmount);
  if (found->is_number_unsigned()) {
    const auto value = found->get<std::uint64_t>();
    if (value > static_cast<std::uint64_t>(kMaxAmount)) throw HttpError(400, rule);
    return static_cast<std::int64_t>(value);
  }
  if (!found->is_number_integer()) throw HttpError(400, rule);
  const auto value = found->get<std::int64_t>();
  if (value < 1 || value > kMaxAmount) throw HttpError(400, rule);
  return value;
}

// Optional; when given, 1 to 128 bytes without control characters.
std::string command_id_field(const json& body) {
  auto id = string_field(body, "command_id", false);
  if (!id) return {};
  if (id->empty() || id->size() > kMaxCommandIdBytes) {
    throw HttpError(400, "field \"command_id\" must have 1 to " +
                             std::to_string(kMaxCommandIdBytes) + " bytes");
  }
  for (const char c : *id) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      throw HttpError(400, "field \"command_id\" must not contain control characters");
    }
  }
  return *id;
}

// --- Query parameters -------------------------------------------------------------------

std::optional<annals::Position> after_param(const httplib::Request& req) {
  if (!req.has_param("after")) return std::nullopt;
  const std::string text = req.get_param_value("after");
  try {
    return annals::Position::parse(text);
  } catch (const annals::InvalidArgumentError&) {
    throw HttpError(
        400, "invalid after=" + excerpt(text) + ": use the \"position\" of a command's response");
  }
}

std::int64_t version_param(const std::string& text) {
  const std::string rule = "invalid version=" + excerpt(text) + ": must be a positive integer";
  if (text.empty() || text.size() > 18) throw HttpError(400, rule);
  std::int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') throw HttpError(400, rule);
    value = value * 10 + (c - '0');
  }
  if (value < 1) throw HttpError(400, rule);
  return value;
}

json state_json(const std::string& account_id, const Account::State& state,
                annals::StreamVersion version) {
  return json{{"account_id", account_id},
              {"owner", state.owner},
              {"balance", state.balance},
              {"version", version},
              {"status", to_string(state.status)}};
}

// --- Failures -----------------------------------------------------------------------------

// What a failed command answers, and how /metrics counts it.
struct CommandFailure {
  int status;
  Outcome outcome;
  std::string message;
};

// The one place where command failures become HTTP statuses. Called in a catch block: it
// rethrows the exception being handled to pick its type. `command_id` is the request's (empty
// when it gave none), so that the advice is true: only a command_id makes sending again safe.
CommandFailure command_failure(const std::string& command_id) {
  const bool has_id = !command_id.empty();
  try {
    throw;
  } catch (const HttpError& e) {
    return {e.status(), e.status() == 400 ? Outcome::kInvalid : Outcome::kRejected, e.what()};
  } catch (const annals::StreamDeletedError& e) {
    // A closed account whose stream was deleted (DELETE /accounts/{id}): gone for good.
    return {410, Outcome::kRejected, std::string("the account is deleted: ") + e.what()};
  } catch (const AccountNotFound& e) {
    return {404, Outcome::kRejected, e.what()};
  } catch (const AccountAlreadyExists& e) {
    return {409, Outcome::kRejected, e.what()};
  } catch (const InvalidAmount& e) {
    return {400, Outcome::kInvalid, e.what()};
  } catch (const InvalidOwner& e) {
    return {400, Outcome::kInvalid, e.what()};
  } catch (const annals::DomainError& e) {
    // InsufficientFunds, AccountIsClosed, BalanceNotZero, BalanceLimitExceeded.
    return {422, Outcome::kRejected, e.what()};
  } catch (const annals::IdempotencyError& e) {
    // The command_id was used before for a different command (another amount, account or
    // kind): the first command's result is not this one's.
    return {409, Outcome::kRejected,
            "command_id \"" + command_id +
                "\" was already used for a different command; nothing was written. Use a new "
                "command_id for a new command: " +
                e.what()};
  } catch (const annals::ConcurrencyError& e) {
    return {409, Outcome::kRejected,
            std::string("too many concurrent changes; nothing was written, ") +
                (has_id ? "retry with the same command_id: " : "send the request again: ") +
                e.what()};
  } catch (const annals::InvalidArgumentError& e) {
    return {400, Outcome::kInvalid, e.what()};
  } catch (const annals::OutcomeUnknownError& e) {
    // The change may have been applied. Only a command_id makes a second send safe.
    spdlog::warn("bank-service: outcome unknown: {}", e.what());
    return {503, Outcome::kFailed,
            std::string("the store became unavailable and the change may or may not have been "
                        "applied; ") +
                (has_id ? "retry with the same command_id, which applies it at most once: "
                        : "this request had no command_id, so sending it again could apply it "
                          "twice: check the account's history first, and give requests a "
                          "command_id to make retries safe: ") +
                e.what()};
  } catch (const annals::UnavailableError& e) {
    spdlog::warn("bank-service: store unavailable: {}", e.what());
    return {503, Outcome::kFailed,
            std::string("the store is unavailable; nothing was written, ") +
                (has_id ? "retry with the same command_id: " : "send the request again later: ") +
                e.what()};
  } catch (const std::exception& e) {
    spdlog::error("bank-service: command failed: {}", e.what());
    return {500, Outcome::kFailed, std::string("internal error: ") + e.what()};
  }
}

// Runs one query: maps failures to a status.
void run_query(httplib::Response& res, const std::function<void()>& run) {
  try {
    run();
  } catch (const HttpError& e) {
    reply_error(res, e.status(), e.what());
  } catch (const annals::StreamDeletedError& e) {
    reply_error(res, 410, std::string("the account is deleted: ") + e.what());
  } catch (const annals::InvalidArgumentError& e) {
    reply_error(res, 400, e.what());
  } catch (const annals::UnavailableError& e) {
    reply_error(res, 503, std::string("unavailable: ") + e.what());
  } catch (const std::exception& e) {
    spdlog::error("bank-service: query failed: {}", e.what());
    reply_error(res, 500, std::string("internal error: ") + e.what());
  }
}

// Errors the server itself produces (no route, body too large, URI too long, unreadable
// request) get a JSON body like ours; responses that already have one keep it.
void reply_to_server_error(const httplib::Request& req, httplib::Response& res,
                           std::size_t max_body_bytes) {
  if (!res.body.empty()) return;
  std::string message;
  switch (res.status) {
    case 404:
      message = "no route for " + req.method + " " + excerpt(req.path);
      break;
    case 413:
      message = "request body too large: the limit is " + std::to_string(max_body_bytes) + " bytes";
      break;
    case 414:
      message = "request URI too long";
      break;
    default:
      message = "malformed HTTP request (HTTP " + std::to_string(res.status) +
                "; a POST without a body needs Content-Length: 0)";
  }
  reply_error(res, res.status, message);
}

// An exception no handler caught: logged, and answered 500 without its details.
void reply_to_unhandled(httplib::Response& res, const std::exception_ptr& error) {
  std::string what = "unknown error";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {  // NOLINT(bugprone-empty-catch): reported below
  }
  spdlog::error("bank-service: unhandled error: {}", what);
  reply_error(res, 500, "internal error");
}

// Bodies over `max_body_bytes` get 413; every answer is JSON, also the server's own errors and
// those of exceptions that no handler caught.
void answer_errors_in_json(httplib::Server& server, std::size_t max_body_bytes) {
  server.set_payload_max_length(max_body_bytes);
  server.set_error_handler([max_body_bytes](const Request& req, Response& res) {
    reply_to_server_error(req, res, max_body_bytes);
  });
  server.set_exception_handler([](const Request&, Response& res, const std::exception_ptr& error) {
    reply_to_unhandled(res, error);
  });
}

// --- History ------------------------------------------------------------------------------

// Which state GET /history shows: at ?version=N, as of ?as_of=TIME, or (neither) the current.
struct HistoryPoint {
  std::optional<annals::StreamVersion> version;
  std::optional<std::chrono::system_clock::time_point> as_of;
  std::string description;  // " at version 3", " at 2024-05-01T12:00:00Z" or ""
};

HistoryPoint history_point(const httplib::Request& req) {
  const bool by_version = req.has_param("version");
  const bool by_time = req.has_param("as_of");
  if (by_version && by_time) throw HttpError(400, "give either version or as_of, not both");
  HistoryPoint point;
  if (by_version) {
    point.version = version_param(req.get_param_value("version"));
    point.description = " at version " + std::to_string(*point.version);
  } else if (by_time) {
    const std::string text = req.get_param_value("as_of");
    point.as_of = parse_rfc3339(text);
    if (!point.as_of) {
      throw HttpError(400, "invalid as_of=" + excerpt(text) +
                               ": use an RFC 3339 time such as 2024-05-01T12:00:00Z");
    }
    point.description = " at " + text;
  }
  return point;
}

annals::Aggregate<Account> load_at(annals::Repository<Account>& accounts, const std::string& id,
                                   const HistoryPoint& point) {
  if (point.version) return accounts.load_at_version(id, *point.version);
  if (point.as_of) return accounts.load_as_of(id, *point.as_of);
  return accounts.load(id);
}

}  // namespace

BankApi::BankApi(annals::CommandBus& bus, annals::Repository<Account>& accounts,
                 annals::EventStore& store, BankQueries& queries, ReadModelProgress progress,
                 Metrics& metrics, BankApiOptions options)
    : bus_(bus),
      accounts_(accounts),
      store_(store),
      queries_(queries),
      progress_(std::move(progress)),
      metrics_(metrics),
      options_(std::move(options)),
      routes_(routes()) {
  patterns_.reserve(routes_.size());
  for (const Route& route : routes_) patterns_.emplace_back(route.pattern);
}

// docs:begin bank-sample-routes
std::vector<BankApi::Route> BankApi::routes() {
  // /accounts/{id}/...: the handlers read the id as req.matches[1] (account_id_from).
  const std::string account(kAccountPath);
  return {
      {"POST", "/accounts", [this](const Request& req, Response& res) { open_account(req, res); }},
      {"POST", account + "/deposit",
       [this](const Request& req, Response& res) { move_money(CommandKind::kDeposit, req, res); }},
      {"POST", account + "/withdraw",
       [this](const Request& req, Response& res) { move_money(CommandKind::kWithdraw, req, res); }},
      {"POST", account + "/close",
       [this](const Request& req, Response& res) { close_account(req, res); }},
      {"DELETE", account, [this](const Request& req, Response& res) { delete_account(req, res); }},
      {"POST", account + "/forget",
       [this](const Request& req, Response& res) { forget_owner(req, res); }},
      {"GET", account, [this](const Request& req, Response& res) { show_account(req, res); }},
      {"GET", account + "/transactions",
       [this](const Request& req, Response& res) { show_transactions(req, res); }},
      {"GET", account + "/history",
       [this](const Request& req, Response& res) { show_history(req, res); }},
      {"GET", "/totals/daily",
       [this](const Request& req, Response& res) { show_daily_totals(req, res); }},
      {"GET", "/health", [this](const Request&, Response& res) { show_health(res); }},
      {"GET", "/metrics", [this](const Request&, Response& res) { show_metrics(res); }},
  };
}
// docs:end

void BankApi::mount(httplib::Server& server) {
  answer_errors_in_json(server, options_.max_body_bytes);
  for (const Route& route : routes_) {
    if (route.method == "GET") {
      server.Get(route.pattern, route.handler);
    } else if (route.method == "DELETE") {
      server.Delete(route.pattern, route.handler);
    } else {
      server.Post(route.pattern, route.handler);
    }
  }
}

// What the server does with a request, without the server: the body limit, the first route
// whose method and pattern match, the handlers' exceptions, and the JSON of its own errors.
void BankApi::dispatch(httplib::Request& req, httplib::Response& res) {
  if (req.body.size() > options_.max_body_bytes) {
    res.status = 413;
  } else if (const Route* route = find_route(req)) {
    try {
      route->handler(req, res);
    } catch (...) {
      reply_to_unhandled(res, std::current_exception());
    }
    if (res.status == -1) res.status = 200;
  } else {
    res.status = 404;
  }
  if (res.status >= 400) reply_to_server_error(req, res, options_.max_body_bytes);
}

const BankApi::Route* BankApi::find_route(httplib::Request& req) const {
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    if (routes_[i].method == req.method && std::regex_match(req.path, req.matches, patterns_[i])) {
      return &routes_[i];
    }
  }
  return nullptr;
}

// docs:begin bank-sample-commands
void BankApi::open_account(const Request& req, Response& res) {
  run_command(CommandKind::kOpen, res, [&](std::string& command_id) {
    const json body = parse_body(req, false);
    allow_only(body, {"account_id", "owner", "command_id"});
    const std::string id = *string_field(body, "account_id", true);
    if (!is_valid_account_id(id)) {
      throw HttpError(400, "invalid account_id " + excerpt(id) + ": use 1 to " +
                               std::to_string(kMaxAccountIdBytes) +
                               " characters out of A-Z a-z 0-9 . _ ~ -");
    }
    const std::string owner = *string_field(body, "owner", true);
    command_id = command_id_field(body);
    const auto result = bus_.send(OpenAccount{id, owner}, command_context(req, command_id));
    reply(res, 201,
          json{{"account_id", id},
               {"version", result.last_version},
               {"position", result.position.to_string()}});
  });
}

void BankApi::move_money(CommandKind kind, const Request& req, Response& res) {
  run_command(kind, res, [&](std::string& command_id) {
    const std::string id = account_id_from(req);
    const json body = parse_body(req, false);
    allow_only(body, {"amount", "command_id"});
    const std::int64_t amount = amount_field(body);
    command_id = command_id_field(body);
    const annals::CommandContext context = command_context(req, command_id);
    const auto result = kind == CommandKind::kDeposit ? bus_.send(Deposit{id, amount}, context)
                                                      : bus_.send(Withdraw{id, amount}, context);
    reply(res, 200,
          json{{"version", result.last_version}, {"position", result.position.to_string()}});
  });
}

void BankApi::run_command(CommandKind kind, Response& res,
                          const std::function<void(std::string& command_id)>& run) {
  const auto started = Clock::now();
  Outcome outcome = Outcome::kOk;
  std::string command_id;  // set by `run` from the request; empty when it gave none
  try {
    run(command_id);
  } catch (...) {
    auto failure = command_failure(command_id);
    outcome = failure.outcome;
    reply_error(res, failure.status, failure.message);
  }
  metrics_.record(kind, outcome, Clock::now() - started);
}
// docs:end

void BankApi::close_account(const Request& req, Response& res) {
  run_command(CommandKind::kClose, res, [&](std::string& command_id) {
    const std::string id = account_id_from(req);
    const json body = parse_body(req, true);
    allow_only(body, {"command_id"});
    command_id = command_id_field(body);
    const auto result = bus_.send(CloseAccount{id}, command_context(req, command_id));
    reply(res, 200,
          json{{"version", result.last_version}, {"position", result.position.to_string()}});
  });
}

// Deletes a closed account's stream (annals soft delete: a tombstone; the events stay in the log
// for audits and projections). Only a closed account may go, at the version it was loaded at.
void BankApi::delete_account(const Request& req, Response& res) {
  run_command(CommandKind::kDelete, res, [&](std::string&) {
    const std::string id = account_id_from(req);
    const auto account = accounts_.load(id);
    if (account.version() == 0) throw AccountNotFound(id);
    if (account.state().status != Account::Status::kClosed) {
      throw HttpError(409, "account " + excerpt(id) + " is open: close it before deleting it");
    }
    const auto result = store_.delete_stream(accounts_.stream_of(id),
                                             annals::ExpectedVersion::exact(account.version()));
    reply(res, 200,
          json{{"deleted", true},
               {"version", result.last_version},
               {"position", result.position.to_string()}});
  });
}

void BankApi::refuse_if_deleted(const std::string& id) {
  if (store_.stream_state(accounts_.stream_of(id)).deleted) {
    throw HttpError(410, "account " + excerpt(id) + " is deleted");
  }
}

// The right to erasure (docs/personal-data.md): the owner's key is destroyed, so the name
// reads as "[redacted]" everywhere from now on; the balances read model erases its copy when it
// handles the SubjectForgotten event (wait with ?after=<position> on GET /accounts/{id}).
void BankApi::forget_owner(const Request& req, Response& res) {
  run_query(res, [&] {
    const std::string id = account_id_from(req);
    if (!options_.forget) throw HttpError(501, "this service cannot forget owners");
    const auto result = options_.forget(id);
    reply(res, 200,
          json{{"account_id", id},
               {"keys_destroyed", result.keys_destroyed},
               {"position", result.event.position.to_string()}});
  });
}

// A position no event has reached yet cannot come from a command's response: answered at once
// rather than after read_timeout, so that such requests do not hold worker threads.
void BankApi::refuse_beyond_head(const annals::Position& after) {
  const annals::Position head = store_.head_position();
  if (after <= head) return;
  // Above the settled head, `after` may still be a committed event's (see
  // BankQueries::log_reaches): such a read waits like any other.
  if (queries_.log_reaches(after).value_or(false)) return;
  throw HttpError(400, "position " + after.to_string() + " is beyond the head of the log (" +
                           head.to_string() +
                           "): no command returned it; use the \"position\" of a command's "
                           "response");
}

void BankApi::wait_for_read_model(const Request& req, std::string_view projection) {
  const auto after = after_param(req);
  if (!after) return;
  refuse_beyond_head(*after);
  if (progress_.wait_for(projection, *after, options_.read_timeout)) return;
  for (const auto& p : progress_.status()) {
    if (p.name == projection && p.state == "failed") {
      throw HttpError(503, "the read model " + std::string(projection) +
                               " has stopped after an error (see the service's log)");
    }
  }
  throw HttpError(504, "the read model " + std::string(projection) + " did not reach position " +
                           after->to_string() + " within " +
                           std::to_string(options_.read_timeout.count()) + " ms");
}

void BankApi::show_account(const Request& req, Response& res) {
  run_query(res, [&] {
    const std::string id = account_id_from(req);
    wait_for_read_model(req, kBalancesProjection);
    const auto account = queries_.account(id);
    if (!account) throw HttpError(404, "account " + excerpt(id) + " not found");
    // Only a closed account can have been deleted: the others cost no extra round trip.
    if (account->status == "closed") refuse_if_deleted(id);
    reply(res, 200, json(*account));
  });
}

void BankApi::show_transactions(const Request& req, Response& res) {
  run_query(res, [&] {
    const std::string id = account_id_from(req);
    wait_for_read_model(req, kTransactionsProjection);
    const auto history = queries_.transactions(id);
    if (!history) throw HttpError(404, "account " + excerpt(id) + " not found");
    if (!history->empty() && history->back().type == "closed") refuse_if_deleted(id);
    reply(res, 200, json{{"account_id", id}, {"transactions", *history}});
  });
}

// The auditor's view: state rebuilt from the event store, not from a read model.
void BankApi::show_history(const Request& req, Response& res) {
  run_query(res, [&] {
    const std::string id = account_id_from(req);
    const HistoryPoint point = history_point(req);
    const auto account = load_at(accounts_, id, point);
    if (account.version() == 0) {
      throw HttpError(404, "account " + excerpt(id) + " did not exist" + point.description);
    }
    reply(res, 200, state_json(id, account.state(), account.version()));
  });
}

void BankApi::show_daily_totals(const Request& req, Response& res) {
  run_query(res, [&] {
    wait_for_read_model(req, kDailyTotalsProjection);
    reply(res, 200, json{{"days", queries_.daily_totals()}});
  });
}

void BankApi::show_health(Response& res) {
  run_query(res, [&] {
    const auto head = store_.head_position();  // proves the store answers
    json projections = json::array();
    for (const auto& p : progress_.status()) {
      projections.push_back(json{{"name", p.name}, {"state", p.state}, {"position", p.position}});
    }
    reply(res, 200,
          json{{"status", "ok"},
               {"store", options_.store_kind},
               {"head", head.to_string()},
               {"projections", std::move(projections)}});
  });
}

void BankApi::show_metrics(Response& res) {
  run_query(res, [&] {
    res.status = 200;
    std::optional<annals::SnapshotStoreStats> snapshots;
    if (options_.snapshots != nullptr) snapshots = options_.snapshots->stats();
    res.set_content(metrics_.render(progress_.status(), progress_.from_checkpoints,
                                    snapshots ? &*snapshots : nullptr),
                    "text/plain; version=0.0.4");
  });
}

}  // namespace bank
