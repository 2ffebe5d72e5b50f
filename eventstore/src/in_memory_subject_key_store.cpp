// The in-memory SubjectKeyStore: a map under one mutex, with the PostgreSQL store's rules (one
// live key per subject, forgotten keys kept as tombstones without material).
#include <algorithm>
#include <map>
#include <mutex>
#include <utility>

#include "annals/eventstore/error.hpp"
#include "annals/eventstore/subject_key_store.hpp"
#include "text_validation.hpp"

namespace annals {

void validate_subject(std::string_view subject) {
  constexpr std::size_t kMaxSubjectBytes = 480;
  if (subject.empty()) throw InvalidArgumentError("invalid subject: it is empty");
  if (subject.size() > kMaxSubjectBytes) {
    throw InvalidArgumentError("invalid subject: it is " + std::to_string(subject.size()) +
                               " bytes long, over the limit of " +
                               std::to_string(kMaxSubjectBytes) + " bytes");
  }
  if (auto problem = detail::find_text_problem(subject)) {
    throw InvalidArgumentError("invalid subject: it " + *problem);
  }
}

namespace {

void validate_candidate(const StoredSubjectKey& key) {
  validate_subject(key.subject);
  if (key.key_id.empty()) throw InvalidArgumentError("a subject key needs a key id");
  if (key.material.size() < 32 || key.material.size() > 256) {
    throw InvalidArgumentError("subject key material must be 32 to 256 bytes, got " +
                               std::to_string(key.material.size()));
  }
}

// Overwrites key bytes before the vector releases them.
void wipe(std::vector<std::uint8_t>& bytes) noexcept {
  volatile std::uint8_t* p = bytes.data();
  for (std::size_t i = 0; i < bytes.size(); ++i) p[i] = 0;
  bytes.clear();
}

class InMemorySubjectKeyStore final : public SubjectKeyStore {
 public:
  ~InMemorySubjectKeyStore() override {
    for (auto& [id, row] : keys_) wipe(row.key.material);
  }

  StoredSubjectKey get_or_create(const StoredSubjectKey& candidate) override {
    validate_candidate(candidate);
    const std::lock_guard lock(mutex_);
    for (const auto& [id, row] : keys_) {
      if (row.key.subject == candidate.subject && !row.forgotten) return row.key;
    }
    if (keys_.contains(candidate.key_id)) {
      throw InvalidArgumentError("subject key id " + candidate.key_id + " is taken");
    }
    keys_.emplace(candidate.key_id, Row{candidate, false});
    return candidate;
  }

  SubjectKeyLookup find(std::string_view subject, std::string_view key_id) override {
    const std::lock_guard lock(mutex_);
    const auto found = keys_.find(std::string(key_id));
    if (found == keys_.end() || found->second.key.subject != subject) return {};
    if (found->second.forgotten) return {SubjectKeyState::kForgotten, std::nullopt};
    return {SubjectKeyState::kLive, found->second.key};
  }

  ForgottenKeys forget(std::string_view subject) override {
    validate_subject(subject);
    const std::lock_guard lock(mutex_);
    ForgottenKeys result;
    for (auto& [id, row] : keys_) {
      if (row.key.subject != subject) continue;
      if (!row.forgotten) {
        wipe(row.key.material);
        row.forgotten = true;
        ++result.destroyed_now;
      }
      result.key_ids.push_back(id);
    }
    std::sort(result.key_ids.begin(), result.key_ids.end());
    return result;
  }

 private:
  struct Row {
    StoredSubjectKey key;
    bool forgotten = false;
  };
  std::mutex mutex_;
  std::map<std::string, Row> keys_;  // by key id
};

}  // namespace

std::unique_ptr<SubjectKeyStore> make_in_memory_subject_key_store() {
  return std::make_unique<InMemorySubjectKeyStore>();
}

}  // namespace annals
