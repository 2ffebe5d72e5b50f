// A minimal service for the App tests (in memory: documents_test.cpp; on PostgreSQL:
// documents_postgres_test.cpp): a tally decider, a document projection of it, and the flow a
// read API runs: send a command, then read its effect back with after(position).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "annals/projections/app.hpp"
#include "annals/projections/documents.hpp"

namespace app_domain {

struct Counted {
  static constexpr std::string_view kTypeName = "Counted";
  static constexpr int kSchemaVersion = 1;
  std::int64_t by = 0;
  friend bool operator==(const Counted&, const Counted&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Counted, by)

struct Count {
  std::string tally_id;
  std::int64_t by = 0;
};

struct Tally {
  static constexpr std::string_view kCategory = "tally";
  struct State {
    std::int64_t total = 0;
  };
  using Event = std::variant<Counted>;
  static State evolve(State state, const Counted& e) {
    state.total += e.by;
    return state;
  }
  static Counted decide(const State&, const Count& c) { return Counted{c.by}; }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Tally::State, total)

struct TallyView {
  std::int64_t total = 0;
  std::int64_t counts = 0;
  friend bool operator==(const TallyView&, const TallyView&) = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(TallyView, total, counts)

class Tallies final : public annals::projections::DocumentProjection {
 public:
  Tallies(const annals::EventRegistry& registry, std::string name, std::string collection)
      : DocumentProjection(registry), name_(std::move(name)), collection_(std::move(collection)) {
    // The handler cannot read the view back inside its batch: add_to says how it changes (and
    // creates it with the first count), so retries and rebuilds count each event once.
    on<Counted>([this](const Counted& e, const annals::EventContext& c,
                       annals::projections::Documents& docs) {
      docs.collection(collection_).add_to(c.stream_id().value(), {{"total", e.by}, {"counts", 1}});
    });
  }
  std::string name() const override { return name_; }
  std::vector<annals::projections::CollectionSpec> collections() const override {
    return {{collection_, {annals::projections::DocumentIndex::ordered("total")}}};
  }

 private:
  std::string name_;
  std::string collection_;
};

/// Wires the tally into `app`, sends two commands and reads the view back after the second.
inline void run_tally(annals::App& app, const std::string& suffix) {
  app.registry().register_events<Tally>();
  app.bus().handle<Tally>(&Count::tally_id);
  const std::string collection = "tallies_" + suffix;
  app.runner().add(std::make_shared<Tallies>(app.registry(), "tallies_" + suffix, collection));
  app.runner().start();
  static_cast<void>(app.bus().send(Count{"t" + suffix, 2}));
  const auto sent = app.bus().send(Count{"t" + suffix, 3});
  const auto view =
      app.collection<TallyView>(collection).after(sent.position).get("tally-t" + suffix);
  ASSERT_TRUE(view.has_value());
  EXPECT_EQ(*view, (TallyView{5, 2}));
  const auto page = app.collection<TallyView>(collection)
                        .find({.filter = annals::projections::DocumentFilter().ge("total", 5)});
  // (Other tests' tallies in the same database count too: this projection reads every tally.)
  EXPECT_NE(std::find(page.ids.begin(), page.ids.end(), "tally-t" + suffix), page.ids.end());

  // A rebuild empties the collection and replays the log into it: the same view again.
  const std::string projection = "tallies_" + suffix;
  const auto request = app.projection_store().request_rebuild(projection);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    const auto state = app.projection_store().rebuild_request(request.id);
    if (state && state->state == annals::projections::RebuildState::kDone) break;
    ASSERT_TRUE(!state || state->state != annals::projections::RebuildState::kFailed)
        << *state->message;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the rebuild did not finish";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(app.collection<TallyView>(collection).after(sent.position).get("tally-t" + suffix),
            (TallyView{5, 2}));
}

}  // namespace app_domain
