// Private: how a projection worker reads the log. While catching up (full pages), the next page
// is read on another thread while the current one is applied; it is used only when the current
// page was committed whole, at its last event, so that it continues from the checkpoint.
#pragma once

#include <cstddef>
#include <cstdint>
#include <future>
#include <optional>
#include <vector>

#include "annals/eventstore/event_store.hpp"

namespace annals::projections::detail {

/// What one read of the log gave: the head and the change-signal token, both taken before the
/// page was read. That order lets a short page checkpoint at the head (every matching event up
/// to it is in the page; EventReader::head_position()) and wait on the token.
struct Page {
  std::uint64_t token = 0;
  Position head;
  std::vector<RecordedEvent> events;
};

/// Pages of one projection's events, at most batch_size each, with one page read ahead.
/// Thread safety: the worker's thread only (the read ahead runs on a thread of its own).
class PagePrefetcher {
 public:
  PagePrefetcher(EventReader& events, EventFilter filter, std::size_t batch_size);
  PagePrefetcher(const PagePrefetcher&) = delete;
  PagePrefetcher& operator=(const PagePrefetcher&) = delete;
  ~PagePrefetcher();

  /// The page after `after`: the one read ahead when it was read from there, otherwise one
  /// read now (and the read ahead is dropped). A failed read ahead rethrows here, as a read
  /// now would.
  Page next(ChangeSignal& signal, Position after);
  /// Starts reading the page after `after` on another thread. The token is observed here,
  /// before the head and the page are read there, as next() does it.
  void prefetch(ChangeSignal& signal, Position after);
  /// Drops the page read ahead (waiting for its thread; the result is stale).
  void discard() noexcept;

 private:
  [[nodiscard]] ReadAllOptions read_options(Position after) const;
  [[nodiscard]] std::optional<Page> take_prefetched(Position after);

  EventReader& events_;
  const EventFilter filter_;
  const std::size_t batch_size_;
  std::future<Page> prefetch_;  // the next page, being read (see prefetch())
  Position prefetch_after_;     // where prefetch_ reads from
};

}  // namespace annals::projections::detail
