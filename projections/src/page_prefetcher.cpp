// A projection worker's reads of the log (see page_prefetcher.hpp).
#include "page_prefetcher.hpp"

#include <utility>

namespace annals::projections::detail {

PagePrefetcher::PagePrefetcher(EventReader& events, EventFilter filter, std::size_t batch_size)
    : events_(events), filter_(std::move(filter)), batch_size_(batch_size) {}

PagePrefetcher::~PagePrefetcher() { discard(); }

Page PagePrefetcher::next(ChangeSignal& signal, Position after) {
  if (auto prefetched = take_prefetched(after)) return std::move(*prefetched);
  Page page;
  page.head = events_.head_position();
  page.token = signal.observe();
  page.events = events_.read_all(read_options(after));
  return page;
}

void PagePrefetcher::prefetch(ChangeSignal& signal, Position after) {
  discard();
  const auto token = signal.observe();
  prefetch_after_ = after;
  prefetch_ = std::async(std::launch::async, [this, token, after] {
    Page page;
    page.token = token;
    page.head = events_.head_position();
    page.events = events_.read_all(read_options(after));
    return page;
  });
}

void PagePrefetcher::discard() noexcept {
  if (!prefetch_.valid()) return;
  try {
    static_cast<void>(prefetch_.get());  // waits for the thread; its result is stale
  } catch (...) {  // NOLINT(bugprone-empty-catch): a stale read's failure does not matter
  }
}

ReadAllOptions PagePrefetcher::read_options(Position after) const {
  ReadAllOptions read;
  read.after = after;
  read.max_count = batch_size_;
  read.filter = filter_;
  return read;
}

std::optional<Page> PagePrefetcher::take_prefetched(Position after) {
  if (!prefetch_.valid()) return std::nullopt;
  if (prefetch_after_ != after) {
    discard();
    return std::nullopt;
  }
  return prefetch_.get();
}

}  // namespace annals::projections::detail
