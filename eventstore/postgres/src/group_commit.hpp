// Internal: group commit for single-event appends.
//
// Each single-event append is one statement in its own transaction, and on a busy server the
// cost of a transaction (its commit record, its share of a WAL flush, the round trip) is most
// of an append's cost. GroupCommit lets callers that arrive while `max_in_flight` groups are
// already running wait and then go to the server together: the first of them to find a free
// slot becomes the leader, takes up to `max_group` waiting requests (oldest first, at most
// `max_group_bytes` of payload unless it takes only one) and runs them with one call of
// `run_group`; every member then wakes with its outcome. With few callers nobody waits and
// every group has one member, so a lone writer pays only a mutex.
//
// The caller decides what a group means. The event store runs a group as one pipelined
// transaction in which every member is still its own statement with its own checks; a member
// the server refuses falls back, in its own thread, to the ordinary append path.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

namespace annals::postgres::detail {

class GroupCommit {
 public:
  /// One caller's request. Derive from it to carry the request and its outcome; run_group
  /// receives pointers to the members of a group.
  struct Member {
    std::size_t bytes = 0;  ///< payload size, for the group's byte budget
   private:
    friend class GroupCommit;
    std::condition_variable wake_;
    bool done_ = false;
  };

  /// Runs a group (1 to max_group members). Must not throw: it records each member's outcome
  /// in the member itself.
  using RunGroup = std::function<void(std::span<Member* const>)>;

  GroupCommit(std::size_t max_in_flight, std::size_t max_group, std::size_t max_group_bytes)
      : max_in_flight_(max_in_flight == 0 ? 1 : max_in_flight),
        max_group_(max_group == 0 ? 1 : max_group),
        max_group_bytes_(max_group_bytes) {}
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;
  ~GroupCommit() = default;

  /// Returns once `member` was part of a group that run_group ran, in this thread or in
  /// another caller's. Groups run in arrival order of their first member; a group never holds
  /// a member that arrived after one left waiting.
  void submit(Member& member, const RunGroup& run_group) {
    std::unique_lock lock(mutex_);
    waiting_.push_back(&member);
    while (!member.done_) {
      if (in_flight_ >= max_in_flight_ || waiting_.empty()) {
        member.wake_.wait(lock);
        continue;
      }
      ++in_flight_;
      std::vector<Member*> group = take_group();
      // Another slot may be free for the requests this group left waiting.
      if (in_flight_ < max_in_flight_ && !waiting_.empty()) waiting_.front()->wake_.notify_one();
      lock.unlock();
      run_group(group);
      lock.lock();
      --in_flight_;
      ++groups_;
      members_ += group.size();
      // Notified under the lock: a member that sees done_ may return and destroy its wake_.
      for (Member* done : group) {
        done->done_ = true;
        if (done != &member) done->wake_.notify_one();
      }
      if (!waiting_.empty()) waiting_.front()->wake_.notify_one();
    }
  }

  /// Groups run so far and the members they held (so members / groups is the mean group size).
  struct Counts {
    std::size_t groups = 0;
    std::size_t members = 0;
  };
  [[nodiscard]] Counts counts() const {
    std::lock_guard lock(mutex_);
    return Counts{groups_, members_};
  }

  /// Requests waiting for a slot right now (for tests and diagnostics).
  [[nodiscard]] std::size_t waiting() const {
    std::lock_guard lock(mutex_);
    return waiting_.size();
  }

 private:
  std::vector<Member*> take_group() {
    std::vector<Member*> group;
    std::size_t bytes = 0;
    while (!waiting_.empty() && group.size() < max_group_) {
      Member* next = waiting_.front();
      if (!group.empty() && bytes + next->bytes > max_group_bytes_) break;
      bytes += next->bytes;
      group.push_back(next);
      waiting_.pop_front();
    }
    return group;
  }

  const std::size_t max_in_flight_;
  const std::size_t max_group_;
  const std::size_t max_group_bytes_;
  mutable std::mutex mutex_;
  std::deque<Member*> waiting_;
  std::size_t in_flight_ = 0;
  std::size_t groups_ = 0;
  std::size_t members_ = 0;
};

}  // namespace annals::postgres::detail
