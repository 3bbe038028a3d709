// The names of the policies, one line each: the addon, TypeScript (src/policy/registry.ts,
// checked against this list by a test) and the CLI take them from here.
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

const std::vector<PolicyEntry>& policy_registry();
// Throws std::invalid_argument naming the known policies when `name` is not one of them.
const PolicyEntry& find_policy(const std::string& name);

std::shared_ptr<const Policy> make_codt_policy(const PolicyArgs& args);
std::shared_ptr<const Policy> make_random_policy(const PolicyArgs& args);
std::shared_ptr<const Policy> make_oracle_policy(const PolicyArgs& args);

}  // namespace saco
