// The policies by name. Each policy_<name>.cc registers itself with one PolicyRegistrar line,
// so adding a policy is one new file here (CMake picks up native/policy_*.cc) plus its line in
// src/policy/registry.ts; a test holds the two lists equal.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "codt.h"
#include "policy.h"

namespace saco {

// What a policy may be built from (a loaded model for the learned ones).
struct PolicyArgs {
  std::shared_ptr<const CodtModel> model;
};

using PolicyFactory = std::shared_ptr<const Policy> (*)(const PolicyArgs&);

struct PolicyEntry {
  const char* name;
  bool needs_model;
  PolicyFactory make;
};

// Every registered policy, sorted by name.
std::vector<PolicyEntry> policy_registry();
// Throws std::invalid_argument naming the known policies when `name` is not one of them.
PolicyEntry find_policy(const std::string& name);

// A namespace-scope constant of each policy file: registers it before main() runs.
struct PolicyRegistrar {
  PolicyRegistrar(const char* name, bool needs_model, PolicyFactory make);
};

}  // namespace saco
