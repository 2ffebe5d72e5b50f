// The command bus's cache of recently used aggregates, so that a command usually costs one
// round trip (the append). Internal to annals::framework (CommandBus); not part of the public
// API.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "annals/eventstore/types.hpp"

namespace annals::detail {

/// A bounded map from stream to aggregate `A` (an Aggregate<D>: stream_id(), version()), least
/// recently used evicted first. Split into shards by stream (each with its own lock and LRU
/// order), so that concurrent senders on different aggregates rarely wait for each other;
/// eviction is LRU per shard. A cached aggregate is only a guess at the stored state: the
/// caller proves it current (an append's expected version) before trusting it.
/// Thread safety: every method may be called from any number of threads at once.
/// Cost: each call hashes the stream id once and holds one shard's lock; get() copies.
template <typename A>
class AggregateCache {
 public:
  /// Keeps at most `capacity` aggregates (0: none) in up to `shards` shards.
  explicit AggregateCache(std::size_t capacity, std::size_t shards = 16)
      : shards_(std::max<std::size_t>(1, std::min(shards, capacity))) {
    for (auto& shard : shards_) shard.capacity = capacity / shards_.size();
    for (std::size_t i = 0; i < capacity % shards_.size(); ++i) ++shards_[i].capacity;
  }

  /// A copy of the cached aggregate of `stream`, or empty; marks it most recently used.
  std::optional<A> get(const StreamId& stream) {
    auto& shard = shard_of(stream.value());
    if (shard.capacity == 0) return std::nullopt;
    std::lock_guard lock(shard.mutex);
    const auto found = shard.entries.find(stream.value());
    if (found == shard.entries.end()) return std::nullopt;
    shard.order.splice(shard.order.begin(), shard.order, found->second.second);
    return found->second.first;
  }

  /// Keeps `aggregate` unless a newer version of it is cached already.
  void put(const A& aggregate) {
    if (shard_of(aggregate.stream_id().value()).capacity == 0) return;
    put(A(aggregate));
  }
  void put(A&& aggregate) {
    const std::string& key = aggregate.stream_id().value();
    auto& shard = shard_of(key);
    if (shard.capacity == 0) return;
    std::lock_guard lock(shard.mutex);
    const auto found = shard.entries.find(key);
    if (found != shard.entries.end()) {
      if (found->second.first.version() <= aggregate.version()) {
        found->second.first = std::move(aggregate);
      }
      shard.order.splice(shard.order.begin(), shard.order, found->second.second);
      return;
    }
    std::string stored_key = key;  // `key` lives in `aggregate`, which is moved below
    shard.order.push_front(stored_key);
    shard.entries.emplace(std::move(stored_key),
                          std::make_pair(std::move(aggregate), shard.order.begin()));
    if (shard.entries.size() > shard.capacity) {
      shard.entries.erase(shard.order.back());
      shard.order.pop_back();
    }
  }

  /// Forgets the aggregate of `stream` (its stored state is no longer what the cache holds).
  void erase(const StreamId& stream) {
    auto& shard = shard_of(stream.value());
    if (shard.capacity == 0) return;
    std::lock_guard lock(shard.mutex);
    const auto found = shard.entries.find(stream.value());
    if (found == shard.entries.end()) return;
    shard.order.erase(found->second.second);
    shard.entries.erase(found);
  }

 private:
  struct Shard {
    std::size_t capacity = 0;
    std::mutex mutex;
    std::list<std::string> order;  // most recently used first
    std::unordered_map<std::string, std::pair<A, std::list<std::string>::iterator>> entries;
  };

  Shard& shard_of(const std::string& key) {
    return shards_[std::hash<std::string>{}(key) % shards_.size()];
  }

  std::vector<Shard> shards_;
};

}  // namespace annals::detail
