// bank-service --memory, end to end over HTTP (no database needed).
#include "bank_service_suite.hpp"

namespace bank_test {

std::vector<std::string> service_args() { return {"--memory", "--port", "0"}; }

}  // namespace bank_test
