// Must NOT compile: Broken's MoneyWithdrawn has no evolve. The test (CMakeLists.txt) checks
// that the compiler's message names the decider and the event.
#include "annals/framework/repository.hpp"

#include <string_view>
#include <variant>

#include "../bank.hpp"

struct Broken {
  struct State {};
  using Event = std::variant<bank::AccountOpened, bank::MoneyWithdrawn>;
  static constexpr std::string_view kCategory = "broken";
  static State evolve(State s, const bank::AccountOpened&) { return s; }
};

void instantiate(annals::Repository<Broken>* repository) { (void)repository; }
template class annals::Repository<Broken>;
