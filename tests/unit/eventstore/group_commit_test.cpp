// The PostgreSQL store's group commit queue (eventstore/postgres/src/group_commit.hpp), with a
// stand-in for the server: a lone caller runs alone in its own thread, callers that arrive while
// every slot is busy are run together (oldest first, within the size and byte limits), no more
// groups than allowed run at once, and every request is run exactly once.
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "group_commit.hpp"

namespace {

using annals::postgres::detail::GroupCommit;

struct Request : GroupCommit::Member {
  int id = 0;
  int runs = 0;  // how many groups carried it (must end at 1)
  std::thread::id ran_on;
};

// A gate that holds run_group until opened: the deterministic way to keep a slot busy.
class Gate {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  void pass() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
};

// Records the groups run_group received, as lists of request ids.
class Recorder {
 public:
  void record(std::span<GroupCommit::Member* const> members) {
    std::vector<int> ids;
    for (auto* member : members) {
      auto* request = static_cast<Request*>(member);
      ++request->runs;
      request->ran_on = std::this_thread::get_id();
      ids.push_back(request->id);
    }
    std::lock_guard lock(mutex_);
    groups_.push_back(ids);
  }
  std::vector<std::vector<int>> groups() {
    std::lock_guard lock(mutex_);
    return groups_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::vector<int>> groups_;
};

bool eventually(const std::function<bool()>& condition) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::yield();
  }
  return true;
}

// Submits requests[0], whose group is held at a gate, then every other request, each once the
// previous one is waiting (so arrival order is the index order); then opens the gate and
// returns the groups that ran.
std::vector<std::vector<int>> submit_behind_a_busy_slot(GroupCommit& queue,
                                                        std::vector<Request>& requests) {
  Recorder recorder;
  Gate gate;
  const auto run = [&](std::span<GroupCommit::Member* const> members) {
    recorder.record(members);
    if (static_cast<Request*>(members.front())->id == 0) gate.pass();
  };
  std::vector<std::future<void>> callers;
  callers.push_back(std::async(std::launch::async, [&] { queue.submit(requests[0], run); }));
  EXPECT_TRUE(eventually([&] { return recorder.groups().size() == 1; }));
  for (std::size_t i = 1; i < requests.size(); ++i) {
    callers.push_back(std::async(std::launch::async, [&, i] { queue.submit(requests[i], run); }));
    EXPECT_TRUE(eventually([&] { return queue.waiting() == i; }));
  }
  gate.open();
  for (auto& caller : callers) caller.get();
  return recorder.groups();
}

TEST(GroupCommitTest, LoneCallerRunsAloneInItsOwnThread) {
  GroupCommit queue(2, 64, 1 << 20);
  Recorder recorder;
  Request request;
  request.id = 7;
  queue.submit(request, [&](auto members) { recorder.record(members); });
  EXPECT_EQ(recorder.groups(), (std::vector<std::vector<int>>{{7}}));
  EXPECT_EQ(request.runs, 1);
  EXPECT_EQ(request.ran_on, std::this_thread::get_id());
  EXPECT_EQ(queue.waiting(), 0U);
}

// One slot, held busy by the first caller: the next five wait, then run as one group in
// arrival order (each is submitted only after the previous one is waiting).
TEST(GroupCommitTest, CallersArrivingWhileTheSlotIsBusyRunTogetherOldestFirst) {
  GroupCommit queue(1, 64, 1 << 20);
  std::vector<Request> requests(6);
  for (int i = 0; i < 6; ++i) requests[static_cast<std::size_t>(i)].id = i;
  EXPECT_EQ(submit_behind_a_busy_slot(queue, requests),
            (std::vector<std::vector<int>>{{0}, {1, 2, 3, 4, 5}}));
  for (const auto& request : requests) EXPECT_EQ(request.runs, 1);
  const auto counts = queue.counts();
  EXPECT_EQ(counts.groups, 2U);
  EXPECT_EQ(counts.members, 6U);
}

// Groups hold at most max_group requests and at most max_group_bytes of payload, but always
// at least one request, however large.
TEST(GroupCommitTest, GroupsRespectTheirSizeAndByteLimits) {
  GroupCommit queue(1, 2, 100);
  std::vector<Request> requests(7);
  const std::vector<std::size_t> bytes = {0, 10, 10, 10, 500, 60, 60};
  for (std::size_t i = 0; i < requests.size(); ++i) {
    requests[i].id = static_cast<int>(i);
    requests[i].bytes = bytes[i];
  }
  // {1,2} by count; {3} because 3+4 would be 510 bytes; {4} alone although over the budget;
  // {5} because 5+6 would be 120 bytes; {6}.
  EXPECT_EQ(submit_behind_a_busy_slot(queue, requests),
            (std::vector<std::vector<int>>{{0}, {1, 2}, {3}, {4}, {5}, {6}}));
}

// Many callers at once: never more than max_in_flight groups running, every request run once,
// and (with more callers than slots) some groups of more than one.
TEST(GroupCommitTest, NeverMoreGroupsInFlightThanAllowedAndEveryRequestRunsOnce) {
  constexpr std::size_t kInFlight = 2;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 300;
  GroupCommit queue(kInFlight, 64, 1 << 20);
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::vector<std::vector<Request>> requests(kThreads);
  for (auto& per_thread : requests) per_thread = std::vector<Request>(kPerThread);
  const auto run = [&](std::span<GroupCommit::Member* const> members) {
    const int now = ++running;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    for (auto* member : members) ++static_cast<Request*>(member)->runs;
    std::this_thread::yield();
    --running;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (auto& request : requests[static_cast<std::size_t>(t)]) queue.submit(request, run);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(most.load(), static_cast<int>(kInFlight));
  for (const auto& per_thread : requests) {
    for (const auto& request : per_thread) ASSERT_EQ(request.runs, 1);
  }
  const auto counts = queue.counts();
  EXPECT_EQ(counts.members, static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_LE(counts.groups, counts.members);
  EXPECT_EQ(queue.waiting(), 0U);
}

}  // namespace
