// The arguments of the stream-lifecycle verbs on the command line (stream_command_line.cpp):
// part of annals::cli_args, the command line without the stores.
#pragma once

#include <CLI/CLI.hpp>

#include "stream_commands.hpp"

namespace annals::cli {

/// Declares the arguments of `delete-stream` on `verb`. Cost: none (no I/O).
void declare_delete_stream_args(CLI::App& verb, DeleteStreamArgs& args);
/// Declares the arguments of `stream-meta` on `verb`. Cost: none (no I/O).
void declare_stream_meta_args(CLI::App& verb, StreamMetaArgs& args);

}  // namespace annals::cli
