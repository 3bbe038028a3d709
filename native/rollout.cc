#include "rollout.h"

#include <algorithm>
#include <cmath>
#include <new>
#include <stdexcept>
#include <string>

#include "memory.h"
#include "pool.h"

namespace saco {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

// One block of users: the environment's latent state, the policy's state, and scratch.
struct Block {
  size_t begin = 0, end = 0;
  std::unique_ptr<EnvBlock> env;
  std::unique_ptr<PolicyState> policy;
  std::vector<float> states;
};

class Simulation {
 public:
  Simulation(const RolloutSpec& spec, const RolloutUsers& users)
      : spec_(spec), users_(users), A_(spec.env->action_sizes().size()), sd_(static_cast<size_t>(spec.env->state_dim())) {
    for (size_t begin = 0; begin < users.ids.size(); begin += kRolloutBlock) {
      Block b;
      b.begin = begin;
      b.end = std::min(users.ids.size(), begin + kRolloutBlock);
      blocks_.push_back(std::move(b));
    }
  }

  size_t blocks() const { return blocks_.size(); }
  Block& block(size_t k) { return blocks_[k]; }

  // The policy's proposal for every user of block k at round t: actions[(i - begin) * A + j].
  void propose(size_t k, uint32_t t, int32_t* actions) {
    Block& b = blocks_[k];
    if (!b.env) {
      b.env = spec_.env->reset(users_, b.begin, b.end);
      b.policy = spec_.policy->start(*spec_.env, *b.env, spec_.rounds, spec_.lambda);
      b.states.resize((b.end - b.begin) * sd_);
    }
    spec_.env->observe(*b.env, t, b.states.data());
    spec_.policy->act(*b.policy, *spec_.env, *b.env, t, b.states.data(), actions);
  }

  // Applies the issued actions, tells the policy, and frees the block after its last round.
  void step(size_t k, uint32_t t, const int32_t* issued, double* reward, double* cost) {
    Block& b = blocks_[k];
    spec_.env->step(*b.env, t, issued, reward, cost);
    for (size_t i = 0; i < b.end - b.begin; ++i) {
      if (!std::isfinite(reward[i]) || !std::isfinite(cost[i])) {
        throw std::runtime_error("the environment gave user " + std::to_string(users_.ids[b.begin + i]) + " a non-finite reward or cost at round " +
                                 std::to_string(t) + ": its features are outside what the environment can simulate");
      }
    }
    spec_.policy->feedback(*b.policy, t, issued, reward, cost);
    if (t + 1 == spec_.rounds) {
      b.policy.reset();
      b.env.reset();
    }
  }

  // Lets a policy that learns across users merge round t's outcomes of every block.
  void end_round(uint32_t t) {
    std::vector<PolicyState*> states;
    for (Block& b : blocks_) states.push_back(b.policy.get());
    spec_.policy->end_round(t, states);
  }

  // What a recorded plan says of block k's users at round t besides their issued actions
  // [n, A] (`proposed`: act()'s, [n, A]): the policy's probability of each issued action and
  // the environment's expected reward and cost of it (NaN where unknown), written [n] each.
  // Before step(): the policy state and the users' states are still those of round t.
  void describe(size_t k, uint32_t t, const int32_t* proposed, const int32_t* issued, double* probability, double* reward, double* cost) const {
    const Block& b = blocks_[k];
    spec_.policy->probability(*b.policy, *spec_.env, *b.env, t, proposed, issued, probability);
    for (size_t i = 0; i < b.end - b.begin; ++i) {
      if (!spec_.env->expected(*b.env, i, t, issued + i * A_, reward[i], cost[i])) reward[i] = cost[i] = std::numeric_limits<double>::quiet_NaN();
    }
  }

  double max_cost(size_t user, const int32_t* action) const {
    const Block& b = blocks_[user / kRolloutBlock];
    return spec_.env->max_cost(*b.env, user - b.begin, action);
  }

 private:
  const RolloutSpec& spec_;
  const RolloutUsers& users_;
  size_t A_, sd_;
  std::vector<Block> blocks_;
};

}  // namespace

void validate_rollout(const RolloutSpec& spec, const RolloutUsers& users) {
  require(spec.env != nullptr, "a rollout needs an environment");
  require(spec.policy != nullptr, "a rollout needs a policy");
  require(!users.ids.empty(), "users must not be empty");
  require(users.ids.size() <= 100000000u, "at most 1e8 users");
  spec.env->validate_users(users);
  require(spec.rounds >= 1 && spec.rounds <= spec.env->rounds(), "rounds must be in [1, env.rounds]");
  require(!std::isnan(spec.budget) && spec.budget > 0, "budget must be > 0");
  require(std::isfinite(spec.lambda) && spec.lambda >= 0, "lambda must be finite and >= 0");
  spec.policy->validate(*spec.env, spec.rounds, spec.lambda);
}

namespace {

// What a user's environment block holds, as far as the estimate is concerned (SY: a few
// dozen doubles; the learned simulator: its history columns).
constexpr uint64_t kEnvBytesPerUser = 512;

bool round_by_round(const RolloutSpec& spec) { return std::isfinite(spec.budget) || spec.policy->learns_across_users(); }

// Users alive at once: a wave (everyone when round-major), or one block per thread.
size_t live_users(const RolloutSpec& spec, size_t users) {
  if (!round_by_round(spec)) return std::min<size_t>(users, static_cast<size_t>(resolve_threads(spec.threads)) * kRolloutBlock);
  if (spec.wave_users == 0 || spec.policy->learns_across_users()) return users;
  const size_t wave = (static_cast<size_t>(spec.wave_users) + kRolloutBlock - 1) / kRolloutBlock * kRolloutBlock;
  return std::min(users, wave);
}

std::string mebibytes(uint64_t bytes) { return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB"; }

// Fails before anything is allocated when the rollout would not fit in `have` bytes.
[[noreturn]] void out_of_memory(const RolloutSpec& spec, size_t users, uint64_t have, const std::string& why) {
  size_t lo = 0, hi = users;  // the most users whose rollout fits
  while (lo < hi) {
    const size_t mid = lo + (hi - lo + 1) / 2;
    if (rollout_bytes(spec, mid) <= have) lo = mid;
    else hi = mid - 1;
  }
  throw OutOfMemory(why + ": a rollout of " + std::to_string(users) + " users x " + std::to_string(spec.rounds) + " rounds needs about " +
                        mebibytes(rollout_bytes(spec, users)) + " and " + mebibytes(have) + " are available" +
                        (spec.memory_limit ? " (memoryLimit)" : "") + "; about " + std::to_string(lo) + " users fit",
                    lo);
}

RolloutResult run(const RolloutSpec& spec, const RolloutUsers& users);

}  // namespace

uint64_t rollout_bytes(const RolloutSpec& spec, size_t users) {
  const uint64_t A = spec.env->action_sizes().size(), R = spec.rounds, sd = static_cast<uint64_t>(spec.env->state_dim());
  const bool optimistic = (std::isfinite(spec.budget) ? spec.optimistic : std::isfinite(spec.check_budget)) && !spec.policy->learns_across_users();
  const bool details = spec.record_plan && spec.record_details;  // PlanDetails, and the proposals the budget may overwrite
  const bool largest = optimistic || (spec.record_users && !std::isfinite(spec.budget));
  const uint64_t per_user = 4 + R * 2 * sizeof(double) + A * 4 + (round_by_round(spec) ? 2 * sizeof(double) : 0) + (spec.record_plan ? R * A * 4 : 0) +
                            (details ? R * (3 * sizeof(double) + 1) + A * 4 : 0) + (largest ? R * sizeof(double) : 0);
  const size_t live = live_users(spec, users);
  return users * per_user + spec.policy->state_bytes(live, spec.rounds) + live * (sd * 4 + kEnvBytesPerUser);
}

RolloutResult rollout(const RolloutSpec& spec, const RolloutUsers& users) {
  validate_rollout(spec, users);
  const uint64_t have = spec.memory_limit > 0 ? spec.memory_limit : available_memory();
  if (rollout_bytes(spec, users.ids.size()) > have) out_of_memory(spec, users.ids.size(), have, "not enough memory");
  try {
    return run(spec, users);
  } catch (const std::bad_alloc&) {
    // everything the rollout held is freed by now: what is available is what a retry gets
    out_of_memory(spec, users.ids.size(), spec.memory_limit > 0 ? spec.memory_limit : available_memory(), "an allocation failed");
  }
}

namespace {

RolloutResult run(const RolloutSpec& spec, const RolloutUsers& users) {
  Simulation sim(spec, users);
  const size_t n = users.ids.size();
  const size_t A = spec.env->action_sizes().size();
  const unsigned threads = resolve_threads(spec.threads);
  RolloutResult result;
  result.revenue_by_round.assign(spec.rounds, 0.0);
  result.cost_by_round.assign(spec.rounds, 0.0);
  const uint32_t R = spec.rounds;
  const bool details = spec.record_plan && spec.record_details;
  if (spec.record_plan) result.plan.assign(n * R * A, 0);
  PlanDetails& d = result.details;
  if (details) {
    d.probability.assign(n * R, 0.0);
    d.expected_reward.assign(n * R, 0.0);
    d.expected_cost.assign(n * R, 0.0);
    d.withheld.assign(n * R, 0);
  }
  std::vector<int32_t> actions(n * A);
  std::vector<double> reward(n * R), cost(n * R);
  std::vector<uint64_t> coupons(sim.blocks(), 0);
  // Block k's issued actions at round t into the plan and, with details, what else it says of
  // them (`proposed`: the policy's actions before the budget rule, laid out like `actions`).
  auto record = [&](size_t k, uint32_t t, const int32_t* proposed) {
    if (!spec.record_plan) return;
    const Block& b = sim.block(k);
    for (size_t i = b.begin; i < b.end; ++i) std::copy_n(actions.data() + i * A, A, result.plan.data() + (i * R + t) * A);
    if (!details) return;
    double p[kRolloutBlock], r[kRolloutBlock], c[kRolloutBlock];
    sim.describe(k, t, proposed + b.begin * A, actions.data() + b.begin * A, p, r, c);
    for (size_t i = b.begin; i < b.end; ++i) {
      d.probability[i * R + t] = p[i - b.begin];
      d.expected_reward[i * R + t] = r[i - b.begin];
      d.expected_cost[i * R + t] = c[i - b.begin];
    }
  };

  const bool learns = spec.policy->learns_across_users();
  // Waves of whole blocks (one wave of everyone: round-major), for the budget rule.
  const bool whole = spec.wave_users == 0 || learns;
  const size_t wave_blocks = whole ? sim.blocks() : (static_cast<size_t>(spec.wave_users) + kRolloutBlock - 1) / kRolloutBlock;
  // With a budget, first the natural rollout, recording each proposal's largest cost: when
  // the budget rule, replayed on it in the arrival order, would withhold nothing, it IS the
  // budget-enforced rollout (the same actions, hence the same draws), computed block by block.
  const bool optimistic = std::isfinite(spec.budget) ? spec.optimistic && !learns : std::isfinite(spec.check_budget) && !learns;
  const double check = std::isfinite(spec.budget) ? spec.budget : spec.check_budget;
  const bool users_out = spec.record_users && !std::isfinite(spec.budget);
  std::vector<double> largest(optimistic || users_out ? n * spec.rounds : 0);
  bool done = false;
  if ((!std::isfinite(spec.budget) && !learns) || optimistic) {
    // Users never interact, so each block runs all its rounds at once and frees its state
    // before the next (same per-user arithmetic as the round-by-round path); a block's
    // caches stay in the core's cache across its rounds.
    for_blocks(sim.blocks(), threads, [&](size_t k) {
      Block& b = sim.block(k);
      int32_t* a = actions.data() + b.begin * A;
      for (uint32_t t = 0; t < spec.rounds; ++t) {
        sim.propose(k, t, a);
        for (size_t i = b.begin; i < b.end; ++i) {
          const double most = sim.max_cost(i, actions.data() + i * A);
          coupons[k] += most > 0 ? 1 : 0;
          if (!largest.empty()) largest[t * n + i] = most;
        }
        record(k, t, actions.data());
        sim.step(k, t, a, reward.data() + t * n + b.begin, cost.data() + t * n + b.begin);
      }
    });
    done = !optimistic;
    if (optimistic) {
      // the budget rule below, replayed on the natural rollout
      const bool withholds = budget_rule_withholds([&](uint32_t t, size_t i) { return largest[t * n + i]; }, [&](uint32_t t, size_t i) { return cost[t * n + i]; }, n,
                                                   spec.rounds, whole ? 0 : spec.wave_users, check);
      result.fits_budget = !withholds;
      done = !withholds || !std::isfinite(spec.budget);
      if (!done) std::fill(coupons.begin(), coupons.end(), 0);  // the enforced replay counts again
    }
  }
  if (!done) {
    const std::vector<int32_t> control = spec.env->control_action();
    std::vector<double> planned_cost(n), unused(n);
    std::vector<int32_t> proposed(details ? n * A : 0);  // the policy's actions, before the budget rule
    // A block's state is freed after its last round, so only one wave is alive at once.
    double spent = 0;
    for (size_t w0 = 0; w0 < sim.blocks(); w0 += wave_blocks) {
      const size_t w1 = std::min(sim.blocks(), w0 + wave_blocks);
      const size_t u0 = sim.block(w0).begin, u1 = sim.block(w1 - 1).end;
      for (uint32_t t = 0; t < spec.rounds; ++t) {
        for_blocks(w1 - w0, threads, [&](size_t j) {
          Block& b = sim.block(w0 + j);
          sim.propose(w0 + j, t, actions.data() + b.begin * A);
          if (details) std::copy(actions.data() + b.begin * A, actions.data() + b.end * A, proposed.data() + b.begin * A);
          spec.env->respond(*b.env, t, actions.data() + b.begin * A, unused.data() + b.begin, planned_cost.data() + b.begin);
        });
        // users arrive in id order; a coupon is withheld when its largest possible cost would
        // take the spend realised so far over B
        double running = spent;
        for (size_t i = u0; i < u1; ++i) {
          int32_t* a = actions.data() + i * A;
          const double largest_cost = sim.max_cost(i, a);
          if (!largest.empty()) largest[t * n + i] = largest_cost;  // a learning policy's users_out
          if (largest_cost > 0 && running + largest_cost > spec.budget) {
            std::copy(control.begin(), control.end(), a);
            ++result.blocked;
            if (details) d.withheld[i * R + t] = 1;
            continue;
          }
          if (largest_cost > 0) ++result.coupons;
          running += planned_cost[i];
        }
        for_blocks(w1 - w0, threads, [&](size_t j) {
          Block& b = sim.block(w0 + j);
          record(w0 + j, t, details ? proposed.data() : actions.data());
          sim.step(w0 + j, t, actions.data() + b.begin * A, reward.data() + t * n + b.begin, cost.data() + t * n + b.begin);
        });
        double round_cost = 0;  // summed per round first, as the TypeScript mirror does
        for (size_t i = u0; i < u1; ++i) round_cost += cost[t * n + i];
        spent += round_cost;
        if (whole && t + 1 < spec.rounds) sim.end_round(t);
      }
    }
  }
  // sums in user order per round, whatever the threads did
  for (uint32_t t = 0; t < spec.rounds; ++t) {
    for (size_t i = 0; i < n; ++i) {
      result.revenue_by_round[t] += reward[t * n + i];
      result.cost_by_round[t] += cost[t * n + i];
    }
    result.revenue += result.revenue_by_round[t];
    result.cost += result.cost_by_round[t];
  }
  for (uint64_t c : coupons) result.coupons += c;
  if (users_out) {
    result.user_reward = std::move(reward);
    result.user_cost = std::move(cost);
    result.user_largest = std::move(largest);
  }
  return result;
}

}  // namespace
}  // namespace saco
