// The bank request fuzz target (tests/fuzz/bank_request_fuzz.cpp) replayed over its seed
// corpus in the ordinary build: the target compiles with every warning of the project, and
// each seed keeps the API's contract (the target aborts otherwise). libFuzzer itself runs it
// under the fuzz preset.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

TEST(BankRequestCorpusTest, EverySeedKeepsTheApiContract) {
  std::size_t seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(BANK_REQUEST_CORPUS)) {
    std::ifstream file(entry.path(), std::ios::binary);
    const std::string input{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
    SCOPED_TRACE(entry.path().filename().string());
    EXPECT_EQ(
        LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size()),
        0);
    ++seeds;
  }
  EXPECT_GE(seeds, 20U);
}

}  // namespace
