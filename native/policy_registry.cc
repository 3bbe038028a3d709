#include "policy_registry.h"

#include <stdexcept>

namespace saco {

const std::vector<PolicyEntry>& policy_registry() {
  static const std::vector<PolicyEntry> entries = {
      {"codt", true, make_codt_policy},
      {"random", false, make_random_policy},
      {"oracle", false, make_oracle_policy},
  };
  return entries;
}

const PolicyEntry& find_policy(const std::string& name) {
  std::string known;
  for (const PolicyEntry& e : policy_registry()) {
    if (name == e.name) return e;
    known += known.empty() ? e.name : std::string(", ") + e.name;
  }
  throw std::invalid_argument("unknown policy '" + name + "' (known: " + known + ")");
}

}  // namespace saco
