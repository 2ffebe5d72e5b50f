// The personal-data suite (personal_data_suite.hpp) on the in-memory event and key stores, and
// the parts that need no store: master keys from text, files and the environment.
#include <cstdlib>
#include <fstream>

#include "annals/eventstore/in_memory_event_store.hpp"
#include "personal_data_suite.hpp"

namespace {

struct InMemoryStores {
  static std::unique_ptr<annals::EventStore> make_store() {
    return annals::make_in_memory_event_store();
  }
  static std::unique_ptr<annals::SubjectKeyStore> make_keys() {
    return annals::make_in_memory_subject_key_store();
  }
  static std::unique_ptr<annals::SnapshotStore> make_snapshots() {
    return annals::make_in_memory_snapshot_store();
  }
};

TEST(MasterKeyTest, ReadsHexAndBase64AndRefusesAnythingElseWithoutEchoingIt) {
  const auto hex = annals::MasterKey::from_text(personal_data_suite::kMasterHex);
  const auto b64 = annals::MasterKey::from_text("ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=\n");
  EXPECT_EQ(hex.fingerprint(), b64.fingerprint());
  EXPECT_EQ(hex.fingerprint().size(), 16U);
  try {
    static_cast<void>(annals::MasterKey::from_text("not-a-key-but-a-secret-0123456789"));
    FAIL();
  } catch (const annals::InvalidArgumentError& e) {
    EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos) << e.what();
  }
}

TEST(MasterKeyTest, ComesFromTheEnvironmentOrAFileButNotBoth) {
  const std::string path = ::testing::TempDir() + "/annals_master_key";
  std::ofstream(path) << personal_data_suite::kMasterHex << "\n";
  ::unsetenv("ANNALS_MASTER_KEY");
  ::unsetenv("ANNALS_MASTER_KEY_FILE");
  EXPECT_FALSE(annals::MasterKey::from_environment().has_value());
  ::setenv("ANNALS_MASTER_KEY_FILE", path.c_str(), 1);
  const auto from_file = annals::MasterKey::from_environment();
  ASSERT_TRUE(from_file);
  EXPECT_EQ(from_file->fingerprint(),
            annals::MasterKey::from_text(personal_data_suite::kMasterHex).fingerprint());
  ::setenv("ANNALS_MASTER_KEY", personal_data_suite::kMasterHex, 1);
  EXPECT_THROW(static_cast<void>(annals::MasterKey::from_environment()),
               annals::InvalidArgumentError);
  ::unsetenv("ANNALS_MASTER_KEY_FILE");
  EXPECT_TRUE(annals::MasterKey::from_environment().has_value());
  ::unsetenv("ANNALS_MASTER_KEY");
}

}  // namespace

namespace personal_data_suite {
INSTANTIATE_TYPED_TEST_SUITE_P(InMemory, PersonalDataSuite, InMemoryStores);
}  // namespace personal_data_suite
