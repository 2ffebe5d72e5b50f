// The runner's reads of the log on their own (projections/src/page_prefetcher.hpp): a page
// read ahead is used only when it continues from where the next read starts, with the token
// observed before it was read; otherwise it is dropped and the page is read again.
#include "page_prefetcher.hpp"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/in_memory_event_store.hpp"
#include "annals/testkit/printers.hpp"

namespace annals::projections::detail {
namespace {

/// Forwards to another reader; read_all() throws UnavailableError while `failing` is set.
class FailingReader final : public EventReader {
 public:
  explicit FailingReader(EventReader& inner) : inner_(inner) {}

  std::vector<RecordedEvent> read_stream(const StreamId& stream,
                                         const ReadStreamOptions& options) override {
    return inner_.read_stream(stream, options);
  }
  std::vector<RecordedEvent> read_all(const ReadAllOptions& options) override {
    if (failing.load()) throw UnavailableError("injected: read failed");
    return inner_.read_all(options);
  }
  std::optional<StreamVersion> stream_version(const StreamId& stream) override {
    return inner_.stream_version(stream);
  }
  Position head_position() override { return inner_.head_position(); }

  std::atomic<bool> failing{false};

 private:
  EventReader& inner_;
};

class PagePrefetcherTest : public ::testing::Test {
 protected:
  PagePrefetcherTest() {
    for (int i = 0; i < 5; ++i) append();
    log_ = events_->read_all({});
  }

  Position append() {
    NewEvent event;
    event.type = "Deposited";
    return events_->append(StreamId("account-1"), ExpectedVersion::any(), {event}).position;
  }

  static std::vector<Position> positions(const Page& page) {
    std::vector<Position> out;
    for (const auto& event : page.events) out.push_back(event.position);
    return out;
  }

  std::unique_ptr<EventStore> events_ = make_in_memory_event_store();
  std::unique_ptr<ChangeSignal> signal_ = events_->watch();
  std::vector<RecordedEvent> log_;
};

TEST_F(PagePrefetcherTest, NextReadsAtMostBatchSizeEventsAfterThePositionAndTheHead) {
  PagePrefetcher pages(*events_, {}, 2);
  const auto page = pages.next(*signal_, log_[0].position);
  EXPECT_EQ(positions(page), (std::vector<Position>{log_[1].position, log_[2].position}));
  EXPECT_EQ(page.head, log_[4].position);
  EXPECT_EQ(page.token, signal_->observe());
}

TEST_F(PagePrefetcherTest, PageReadAheadIsUsedWhenTheNextReadStartsWhereItDid) {
  PagePrefetcher pages(*events_, {}, 2);
  const auto token = signal_->observe();
  pages.prefetch(*signal_, log_[1].position);
  append();  // a read now would observe a later token

  const auto page = pages.next(*signal_, log_[1].position);
  EXPECT_EQ(page.token, token) << "the token observed before the page was read ahead";
  EXPECT_EQ(positions(page), (std::vector<Position>{log_[2].position, log_[3].position}));
}

TEST_F(PagePrefetcherTest, PageReadAheadFromElsewhereIsDroppedAndThePageReadAgain) {
  PagePrefetcher pages(*events_, {}, 2);
  const auto token = signal_->observe();
  pages.prefetch(*signal_, log_[1].position);
  append();

  // The page before was not committed whole: the next read starts earlier.
  const auto page = pages.next(*signal_, log_[0].position);
  EXPECT_NE(page.token, token);
  EXPECT_EQ(page.token, signal_->observe());
  EXPECT_EQ(positions(page), (std::vector<Position>{log_[1].position, log_[2].position}));
}

TEST_F(PagePrefetcherTest, FailedReadAheadRethrowsFromNextAndIsForgottenByDiscard) {
  FailingReader reader(*events_);
  PagePrefetcher pages(reader, {}, 2);
  reader.failing = true;
  pages.prefetch(*signal_, log_[1].position);
  EXPECT_THROW(static_cast<void>(pages.next(*signal_, log_[1].position)), UnavailableError);

  pages.prefetch(*signal_, log_[1].position);
  pages.discard();
  reader.failing = false;
  const auto page = pages.next(*signal_, log_[1].position);
  EXPECT_EQ(positions(page), (std::vector<Position>{log_[2].position, log_[3].position}));
}

}  // namespace
}  // namespace annals::projections::detail
