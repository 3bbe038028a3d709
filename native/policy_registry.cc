#include "policy_registry.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace saco {
namespace {

// A function-local static: registrars in other files may run before this file's statics.
std::vector<PolicyEntry>& entries() {
  static std::vector<PolicyEntry> all;
  return all;
}

}  // namespace

PolicyRegistrar::PolicyRegistrar(const char* name, bool needs_model, PolicyFactory make) {
  entries().push_back(PolicyEntry{name, needs_model, make});
}

std::vector<PolicyEntry> policy_registry() {
  std::vector<PolicyEntry> sorted = entries();
  std::sort(sorted.begin(), sorted.end(), [](const PolicyEntry& a, const PolicyEntry& b) { return std::strcmp(a.name, b.name) < 0; });
  return sorted;
}

PolicyEntry find_policy(const std::string& name) {
  std::string known;
  for (const PolicyEntry& e : policy_registry()) {
    if (name == e.name) return e;
    known += known.empty() ? e.name : std::string(", ") + e.name;
  }
  throw std::invalid_argument("unknown policy '" + name + "' (known: " + known + ")");
}

}  // namespace saco
