// The policies by name. Each policy_<name>.cc registers itself with one PolicyRegistrar line,
// so adding a policy is one new file here (CMake picks up native/policy_*.cc) plus its line in
// src/policy/registry.ts; a test holds the two lists equal.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codt.h"
#include "policy.h"

namespace saco {

class CausalForest;  // forest.h
struct ScoredSpec;    // policy_scored.h
struct FixedArmSpec;  // policy_scored.h

// One arm's outcomes in a training log (the bandit's prior; an arm is an action combination,
// numbered with the first dimension slowest).
struct BanditArm {
  double count = 0, mean_reward = 0, mean_cost = 0, var_reward = 0, var_cost = 0, cov = 0;
};
struct BanditPrior {
  std::vector<BanditArm> arms;
  double weight = 10;  // pseudo-observations the log is worth per arm (at most its count)
  uint64_t seed = 1;
};

// What a policy may be built from (a loaded model for the learned ones, a fitted forest, a
// bandit's prior, an outcome model to score with, a thinned arm); each policy checks that what it needs is there.
struct PolicyArgs {
  std::shared_ptr<const CodtModel> model;
  std::shared_ptr<const CausalForest> forest;
  std::shared_ptr<const BanditPrior> bandit;
  std::shared_ptr<const ScoredSpec> scored;
  std::shared_ptr<const FixedArmSpec> fixed_arm;
  // The CODT policy computes a block's round-0 target tokens once (the same for every user
  // of a λ) instead of per user; the plan is the same (codt.h, append_shared).
  bool shared_prefix = true;
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
