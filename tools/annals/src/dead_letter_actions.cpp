#include "dead_letter_actions.hpp"

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <set>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "annals/eventstore/error.hpp"
#include "projection_commands.hpp"

namespace annals::cli {
namespace {

using projections::DeadLetterState;
using projections::ProjectionStore;

const char* name_of(DeadLetterAction action) {
  return action == DeadLetterAction::kRetry ? "retry" : "skip";
}

void check_args(const DeadLetterActionArgs& args) {
  if (args.all && args.id) throw InvalidArgumentError("give an ID or --all, not both");
  if (!args.all && !args.id) {
    throw InvalidArgumentError("give a dead letter's ID, or --projection P --all");
  }
  if (args.all && !args.projection) {
    throw InvalidArgumentError(
        "--all needs --projection P (the projection whose dead letters "
        "to act on)");
  }
  if (args.projection && args.projection->empty()) {
    throw InvalidArgumentError("--projection must not be empty");
  }
  if (args.projection && !args.all) {
    throw InvalidArgumentError("--projection is only used with --all");
  }
}

// The states an action applies to: a retry re-applies parked letters; a skip gives up on
// letters not yet resolved.
std::vector<DeadLetterState> open_states(DeadLetterAction action) {
  if (action == DeadLetterAction::kRetry) return {DeadLetterState::kParked};
  return {DeadLetterState::kParked, DeadLetterState::kRetryRequested};
}

struct BulkOutcome {
  std::vector<std::int64_t> done;
  std::vector<std::int64_t> changed_meanwhile;
};

// Retries or skips one listed letter; one that another session resolved or skipped since the
// listing is recorded as changed meanwhile.
void act_on_one(ProjectionStore& store, DeadLetterAction action, std::int64_t id,
                BulkOutcome& outcome) {
  try {
    if (action == DeadLetterAction::kRetry) {
      store.request_retry(id);
    } else {
      store.skip(id);
    }
    outcome.done.push_back(id);
  } catch (const InvalidArgumentError&) {
    outcome.changed_meanwhile.push_back(id);
  } catch (const NotFoundError&) {
    outcome.changed_meanwhile.push_back(id);
  }
}

// Acts on every open letter of `projection`, page by page (a listing returns at most 1,000),
// until a listing shows none it has not tried.
BulkOutcome act_on_all(ProjectionStore& store, DeadLetterAction action,
                       const std::string& projection) {
  BulkOutcome outcome;
  std::set<std::int64_t> tried;
  for (const auto state : open_states(action)) {
    bool any_new = true;
    while (any_new) {
      any_new = false;
      for (const auto& letter :
           store.list_dead_letters({.projection = projection, .state = state})) {
        if (!tried.insert(letter.id).second) continue;
        any_new = true;
        act_on_one(store, action, letter.id, outcome);
      }
    }
  }
  std::sort(outcome.done.begin(), outcome.done.end());
  return outcome;
}

std::string id_list(const std::vector<std::int64_t>& ids) {
  std::ostringstream text;
  for (std::size_t i = 0; i < ids.size(); ++i) text << (i == 0 ? "" : ", ") << ids[i];
  return text.str();
}

void print_bulk(DeadLetterAction action, const std::string& projection, const BulkOutcome& outcome,
                bool json, std::ostream& out) {
  if (json) {
    nlohmann::ordered_json j{{"action", name_of(action)},
                             {"projection", projection},
                             {"ids", outcome.done},
                             {"changed_meanwhile", outcome.changed_meanwhile}};
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    return;
  }
  out << projection << ": " << outcome.done.size() << " dead letter(s) "
      << (action == DeadLetterAction::kRetry ? "retry requested" : "skipped");
  if (!outcome.done.empty()) out << " (ids " << id_list(outcome.done) << ")";
  out << '\n';
  if (!outcome.changed_meanwhile.empty()) {
    out << projection << ": " << outcome.changed_meanwhile.size()
        << " changed state meanwhile, left as they are (ids " << id_list(outcome.changed_meanwhile)
        << ")\n";
  }
}

}  // namespace

void dead_letters_act(ProjectionStore& store, DeadLetterAction action,
                      const DeadLetterActionArgs& args, std::ostream& out) {
  check_args(args);
  if (args.all) {
    print_bulk(action, *args.projection, act_on_all(store, action, *args.projection), args.json,
               out);
    return;
  }
  const auto id = parse_dead_letter_id(*args.id);
  std::ostringstream text;
  if (action == DeadLetterAction::kRetry) {
    dead_letters_retry(store, id, text);
  } else {
    dead_letters_skip(store, id, text);
  }
  if (!args.json) {
    out << text.str();
    return;
  }
  nlohmann::ordered_json j{
      {"action", name_of(action)},
      {"id", id},
      {"state", action == DeadLetterAction::kRetry ? "retry-requested" : "skipped"}};
  out << j.dump() << '\n';
}

}  // namespace annals::cli
