// A downstream program built against an installed annals: appends to and reads from the
// in-memory store, and calls into annals::postgres (connection refused → UnavailableError) to
// prove that the PostgreSQL library and its libpqxx/libpq dependencies link from the package.
#include <iostream>
#include <string>

#include <annals/eventstore/error.hpp>
#include <annals/eventstore/in_memory_event_store.hpp>
#include <annals/postgres/postgres_event_store.hpp>

int main() {
  auto store = annals::make_in_memory_event_store();
  const annals::StreamId stream{"account-1"};
  annals::NewEvent opened;
  opened.type = "Opened";
  opened.data = {{"owner", "Ada"}};
  const auto result = store->append(stream, annals::ExpectedVersion::no_stream(), {opened});
  const auto events = store->read_stream(stream);
  if (result.last_version != 1 || events.size() != 1 || events[0].data["owner"] != "Ada") {
    std::cerr << "consumer: unexpected in-memory store behaviour\n";
    return 1;
  }

  try {
    (void)annals::postgres::migration_status("postgresql://annals@127.0.0.1:1/none");
    std::cerr << "consumer: expected a connection failure on port 1\n";
    return 1;
  } catch (const annals::Error& e) {
    if (e.code() != annals::ErrorCode::kUnavailable) {
      std::cerr << "consumer: expected an unavailable error, got " << annals::to_string(e.code())
                << ": " << e.what() << "\n";
      return 1;
    }
  }
  std::cout << "consumer: ok (" << events.size() << " event read back)\n";
  return 0;
}
