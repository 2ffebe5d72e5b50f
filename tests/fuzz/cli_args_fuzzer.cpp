// Fuzzes the annals CLI's command line (tools/annals/src/command_line.cpp) without a database:
// the input, split at NUL bytes, is the argument list after the program name. Parsing must
// either name exactly one command or refuse with CLI::ParseError (usage errors, --help,
// --version) or annals::InvalidArgumentError (missing or unknown verb, empty --db); any other
// exception, or a crash, aborts. The help and usage texts are rendered too, as the tool would.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "annals/eventstore/error.hpp"
#include "command_line.hpp"

namespace {

std::vector<std::string> split_arguments(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> words{"annals"};
  std::string word;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      words.push_back(word);
      word.clear();
    } else {
      word.push_back(static_cast<char>(data[i]));
    }
  }
  if (size > 0) words.push_back(word);
  return words;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto words = split_arguments(data, size);
  std::vector<const char*> argv;
  for (const auto& word : words) argv.push_back(word.c_str());
  argv.push_back(nullptr);

  annals::cli::CommandLineParser parser;
  try {
    static_cast<void>(parser.parse(static_cast<int>(words.size()), argv.data()));
    try {
      static_cast<void>(parser.database_url());
    } catch (const annals::InvalidArgumentError&) {
    }
  } catch (const CLI::ParseError& e) {
    static_cast<void>(parser.app().help());  // what `annals --help` or a usage error shows
    static_cast<void>(annals::cli::one_line(e.what()));
  } catch (const annals::InvalidArgumentError& e) {
    static_cast<void>(annals::cli::one_line(e.what()));
  } catch (...) {
    std::abort();
  }
  return 0;
}
