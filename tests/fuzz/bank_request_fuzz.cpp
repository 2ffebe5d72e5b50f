// Fuzzes the bank service's request parsing and routing in process: BankApi::dispatch over
// in-memory stores (no network, no database, no projection threads). An input is
// "METHOD TARGET\n" followed by the body; TARGET is split and decoded as the server does.
// Aborts when an answer breaks the API's contract: a status outside 200-599, a 500 (an
// exception no handler expected), or a body that is not JSON ({"error": "..."} for every
// status from 400) on any route but /metrics.
#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "account.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/eventstore/snapshot_store.hpp"
#include "annals/framework/command_bus.hpp"
#include "annals/projections/document_reader.hpp"
#include "annals/projections/in_memory_projection_store.hpp"
#include "bank_api.hpp"
#include "document_read_models.hpp"

namespace {

// The service's command and query sides over in-memory stores, kept across inputs (state
// reached by one input is there for the next, as in a running service). Reads with ?after=
// do not wait: no projection runs, so the read models stay empty (their collections exist).
struct Bank {
  annals::EventRegistry registry;
  std::unique_ptr<annals::EventStore> events = annals::make_in_memory_event_store();
  std::unique_ptr<annals::SnapshotStore> snapshots = annals::make_in_memory_snapshot_store(*events);
  std::unique_ptr<annals::projections::ProjectionStore> projection_store =
      annals::projections::make_in_memory_projection_store();
  std::unique_ptr<annals::projections::DocumentReader> reader =
      annals::projections::make_in_memory_document_reader(*projection_store);
  bank::BankReadModels read_models;
  std::unique_ptr<annals::CommandBus> bus;
  std::unique_ptr<annals::Repository<bank::Account>> accounts;
  bank::Metrics metrics;
  std::unique_ptr<bank::BankApi> api;

  Bank() {
    bank::register_events(registry);
    registry.validate();
    read_models = bank::make_read_models(registry, *reader);
    // Declares the collections (as the service does when bank-projector runs the projections).
    for (const auto& projection : read_models.projections) projection_store->prepare(*projection);
    bus = std::make_unique<annals::CommandBus>(
        *events, registry, annals::CommandBusOptions{.snapshots = snapshots.get()});
    bus->handle<bank::Account>(&bank::OpenAccount::account_id);
    bus->handle<bank::Account>(&bank::Deposit::account_id);
    bus->handle<bank::Account>(&bank::Withdraw::account_id);
    bus->handle<bank::Account>(&bank::CloseAccount::account_id);
    accounts = std::make_unique<annals::Repository<bank::Account>>(*events, registry);
    bank::ReadModelProgress progress;
    progress.wait_for = [](std::string_view, annals::Position, std::chrono::milliseconds) {
      return true;
    };
    progress.status = [] { return std::vector<bank::ProjectionProgress>{}; };
    api = std::make_unique<bank::BankApi>(
        *bus, *accounts, *events, *read_models.queries, std::move(progress), metrics,
        bank::BankApiOptions{.read_timeout = std::chrono::milliseconds(1),
                             .max_body_bytes = 64 * 1024,
                             .store_kind = "memory",
                             .snapshots = snapshots.get()});
  }
};

// "METHOD TARGET\n" + body, as the server's request line and body would give them.
httplib::Request request_of(std::string_view input) {
  httplib::Request req;
  const auto line_end = input.find('\n');
  const std::string_view line = input.substr(0, line_end);
  if (line_end != std::string_view::npos) req.body = std::string(input.substr(line_end + 1));
  const auto space = line.find(' ');
  req.method = std::string(line.substr(0, space));
  req.target = space == std::string_view::npos ? "" : std::string(line.substr(space + 1));
  const auto query = req.target.find('?');
  req.path = httplib::detail::decode_url(req.target.substr(0, query), false);
  if (query != std::string::npos) {
    httplib::detail::parse_query_text(req.target.substr(query + 1), req.params);
  }
  return req;
}

bool keeps_the_contract(const httplib::Request& req, const httplib::Response& res) {
  if (res.status < 200 || res.status > 599 || res.status == 500) return false;
  if (req.method == "GET" && req.path == "/metrics" && res.status == 200) return true;
  const auto body = nlohmann::json::parse(res.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return false;
  if (res.status < 400) return true;
  return body.is_object() && body.contains("error") && body["error"].is_string();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Bank* const bank = new Bank();  // never destroyed: libFuzzer exits without unwinding
  httplib::Request req = request_of(std::string_view(reinterpret_cast<const char*>(data), size));
  httplib::Response res;
  bank->api->dispatch(req, res);
  if (!keeps_the_contract(req, res)) std::abort();
  return 0;
}
