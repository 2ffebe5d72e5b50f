// The arguments of the stream-lifecycle verbs (stream_commands.hpp), declared on their CLI::App:
// part of annals::cli_args, the command line without the stores (the fuzzer parses with it).
#include "stream_command_line.hpp"

#include <cstdint>

namespace annals::cli {

void declare_delete_stream_args(CLI::App& verb, DeleteStreamArgs& args) {
  verb.add_option("STREAM", args.stream, "Stream id")->required();
  verb.add_option("--expected-version", args.expected_version,
                  "any, exists, or N: the stream must be at version N. A mismatch exits 3")
      ->type_name("any|exists|N")
      ->required();
  verb.add_flag("--json", args.json, "One JSON object instead of text");
}

void declare_stream_meta_args(CLI::App& verb, StreamMetaArgs& args) {
  verb.add_option("STREAM", args.stream, "Stream id")->required();
  verb.add_option_function<std::int64_t>(
          "--max-count", [&args](const std::int64_t& n) { args.max_count = n; },
          "Reads return only the newest N events (N >= 1)")
      ->type_name("N");
  verb.add_option_function<std::int64_t>(
          "--max-age", [&args](const std::int64_t& s) { args.max_age_seconds = s; },
          "Reads return only events recorded in the last SECONDS (>= 1)")
      ->type_name("SECONDS");
  verb.add_option_function<std::int64_t>(
          "--truncate-before", [&args](const std::int64_t& v) { args.truncate_before = v; },
          "Reads return only events at VERSION or later (>= 1)")
      ->type_name("VERSION");
  verb.add_flag("--clear", args.clear,
                "Remove every rule first (alone: the stream has no rules afterwards)");
  verb.add_flag("--json", args.json, "One JSON object instead of text");
}

}  // namespace annals::cli
