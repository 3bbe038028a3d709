#include "dual.h"

#include <nlopt.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <utility>
#include <vector>
#include <stdexcept>
#include <string>

#include "rng.h"

namespace saco {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

// Thrown when the rollout allowance is spent; the search finishes with what it has.
struct Exhausted {};

// The subsample: the first n users of a seeded permutation of the population's blocks of
// kRolloutBlock consecutive users (a short last block stays last), handed out in parts, each in
// population order. A part is whole blocks, so its rollout groups users into the same blocks as
// a rollout of everyone: the same decisions, bit for bit, whatever the GEMM kernel. Sizes that
// are multiples of kRolloutBlock take whole blocks.
class Sampler {
 public:
  Sampler(const RolloutUsers& users, uint64_t seed) : users_(users), order_(users.ids.size()) {
    const size_t N = users.ids.size(), full = N / kRolloutBlock;
    std::vector<size_t> blocks(full);
    for (size_t b = 0; b < full; ++b) blocks[b] = b;
    CounterStream rng(seed, 0, 0, kStreamSubsample);
    for (size_t i = full; i > 1; --i) {  // Fisher-Yates
      const auto j = static_cast<size_t>(std::min(rng.uniform() * static_cast<double>(i), static_cast<double>(i - 1)));
      std::swap(blocks[i - 1], blocks[j]);
    }
    size_t k = 0;
    for (size_t b : blocks) {
      for (size_t u = 0; u < kRolloutBlock; ++u) order_[k++] = b * kRolloutBlock + u;
    }
    for (size_t i = full * kRolloutBlock; i < N; ++i) order_[k++] = i;
  }

  // Users a..b of the permutation, in population order (`idx`: their population indices).
  RolloutUsers range(size_t a, size_t b, std::vector<size_t>& idx) const {
    idx.assign(order_.begin() + static_cast<std::ptrdiff_t>(a), order_.begin() + static_cast<std::ptrdiff_t>(b));
    std::sort(idx.begin(), idx.end());
    const size_t width = users_.features.size() / users_.ids.size();
    RolloutUsers out;
    out.ids.reserve(idx.size());
    out.features.reserve(idx.size() * width);
    for (size_t i : idx) {
      out.ids.push_back(users_.ids[i]);
      out.features.insert(out.features.end(), users_.features.begin() + static_cast<std::ptrdiff_t>(i * width),
                          users_.features.begin() + static_cast<std::ptrdiff_t>((i + 1) * width));
    }
    return out;
  }
  size_t at(size_t k) const { return order_[k]; }

 private:
  static constexpr uint32_t kStreamSubsample = 9;
  const RolloutUsers& users_;
  std::vector<size_t> order_;
};

class Prober {
 public:
  Prober(const RolloutSpec& base, const RolloutUsers& users, const SearchSpec& search, SearchResult& out)
      : base_(base), users_(users), search_(search), max_(search.max_rollouts), out_(out) {}

  // Natural spend and revenue at λ on every user (no budget enforced). The rollout also
  // replays the budget rule on itself: when it withholds nothing, it is the plan at λ, kept
  // for finish(). A λ already probed is not run again; a λ grown over part of the population
  // (grow()) is completed on the rest.
  Probe at(double lambda) {
    for (const Probe& p : full_) {
      if (p.lambda == lambda) return p;
    }
    if (find(lambda)) return grow(lambda, users_.ids.size());
    if (out_.rollouts >= max_ - 1) throw Exhausted{};  // keep one rollout for the final plan
    RolloutSpec spec = base_;
    spec.lambda = lambda;
    spec.budget = std::numeric_limits<double>::infinity();
    spec.check_budget = search_.budget;
    spec.record_plan = true;
    RolloutResult r = rollout(spec, users_);
    ++out_.rollouts;
    const Probe p{lambda, r.revenue, r.cost, users_.ids.size()};
    full_.push_back(p);
    if (r.fits_budget) keep(lambda, std::move(r));
    report(p);
    return p;
  }

  // Probes grown over the seeded permutation of the users (sample()): grow(λ, k) rolls out
  // the first k users of the permutation at λ, running only those not yet run at λ, and
  // returns the subsample's sums scaled to the population with the standard error of that
  // spend estimate (sampling without replacement, from the spread of the blocks' spend). At
  // k = N the parts are put together into the rollout on every user, in population order: the
  // same users' outcomes (each user's draws are keyed by its id, and the permutation moves
  // whole blocks of users, so every user is decoded with the same blockmates as in one
  // rollout), summed in the same order, with the budget rule replayed on it, as at() computes
  // it in one piece.
  void sample(uint64_t seed) { sampler_ = std::make_unique<Sampler>(users_, seed); }

  Probe grow(double lambda, size_t k) {
    const size_t N = users_.ids.size();
    k = std::min(k, N);
    for (const Probe& p : full_) {  // a λ already on every user: that probe, not its parts' estimate
      if (p.lambda == lambda) return p;
    }
    Grown* g = find(lambda);
    if (g && k <= g->m) return estimate(*g, k);
    if (k == N) {
      if (out_.rollouts >= max_ - 1) throw Exhausted{};
    } else if (out_.sample_rollouts >= max_) {
      throw Exhausted{};
    }
    if (!g) g = &add(lambda);
    g->used = ++clock_;
    Chunk c;
    const RolloutUsers part = sampler_->range(g->m, k, c.idx);
    RolloutSpec spec = base_;
    spec.lambda = lambda;
    spec.budget = std::numeric_limits<double>::infinity();
    spec.record_plan = true;
    spec.record_users = true;
    c.r = rollout(spec, part);
    const size_t n = c.idx.size(), R = base_.rounds;
    for (size_t j = 0; j < n; ++j) {  // each user's totals, in permutation order
      double cost = 0, revenue = 0;
      for (size_t t = 0; t < R; ++t) cost += c.r.user_cost[t * n + j], revenue += c.r.user_reward[t * n + j];
      g->cost.push_back(cost);
      g->revenue.push_back(revenue);
    }
    // (the permutation order of this part: its users sorted back by their place in the permutation)
    reorder_tail(*g, c.idx);
    g->m = k;
    g->chunks.push_back(std::move(c));
    if (k < N) {
      ++out_.sample_rollouts;
      out_.sample_users = std::max<uint64_t>(out_.sample_users, k);
      const Probe p = estimate(*g, k);
      report(p);
      return p;
    }
    RolloutResult r = merge(*g);
    ++out_.rollouts;
    const Probe p{lambda, r.revenue, r.cost, N};
    full_.push_back(p);
    g->chunks.clear();
    g->chunks.shrink_to_fit();
    if (r.fits_budget) keep(lambda, std::move(r));
    report(p);
    return p;
  }

  // The plan at λ with the budget enforced by the environment: a kept probe at λ when its
  // budget rule withheld nothing (the same rollout), else a rollout. `binding`: the budget is
  // known to bind at λ, so the natural rollout is not tried first.
  RolloutResult enforced(double lambda, double budget, bool binding = false) {
    for (auto& k : kept_) {
      if (k.first == lambda && budget == search_.budget) {
        RolloutResult r = std::move(k.second);
        kept_.clear();
        return r;
      }
    }
    // a probe at λ whose budget rule withheld something: the natural rollout is not tried again
    const bool probed = budget == search_.budget && std::any_of(full_.begin(), full_.end(), [&](const Probe& p) { return p.lambda == lambda; });
    grown_.clear();  // the parts of probes are no longer needed: free them before the plan's rollout
    RolloutSpec spec = base_;
    spec.lambda = lambda;
    spec.budget = budget;
    spec.record_plan = true;
    spec.optimistic = !binding && !probed;
    ++out_.rollouts;
    return rollout(spec, users_);
  }

  void finish(double lambda, double budget, bool binding = false) {
    out_.plan = enforced(lambda, budget, binding);
    out_.lambda = lambda;
  }

 private:
  struct Chunk {
    std::vector<size_t> idx;  // population indices of the part, ascending (the rollout's user order)
    RolloutResult r;
  };
  // A probe grown over the first m users of the permutation.
  struct Grown {
    double lambda = 0;
    size_t m = 0;
    std::vector<double> cost, revenue;  // each user's totals, in permutation order
    std::vector<Chunk> chunks;          // until merged
    uint64_t used = 0;
  };

  Grown* find(double lambda) {
    for (Grown& g : grown_) {
      if (g.lambda == lambda) return &g;
    }
    return nullptr;
  }

  // A new grown probe; the least recently used ones are dropped beyond a population's worth of
  // stored users (their estimates stay in the trace; memory stays within a few rollouts').
  Grown& add(double lambda) {
    size_t stored = 0;
    for (const Grown& g : grown_) stored += g.m;
    while (stored > users_.ids.size() && !grown_.empty()) {
      auto oldest = std::min_element(grown_.begin(), grown_.end(), [](const Grown& a, const Grown& b) { return a.used < b.used; });
      stored -= oldest->m;
      grown_.erase(oldest);
    }
    grown_.emplace_back();
    grown_.back().lambda = lambda;
    return grown_.back();
  }

  // The totals just appended for `idx` (population order) put in permutation order.
  void reorder_tail(Grown& g, const std::vector<size_t>& idx) {
    const size_t n = idx.size(), start = g.cost.size() - n;
    std::vector<double> cost(n), revenue(n);
    for (size_t r = 0; r < n; ++r) {
      const size_t i = sampler_->at(g.m + r);
      const size_t j = static_cast<size_t>(std::lower_bound(idx.begin(), idx.end(), i) - idx.begin());
      cost[r] = g.cost[start + j];
      revenue[r] = g.revenue[start + j];
    }
    std::copy(cost.begin(), cost.end(), g.cost.begin() + static_cast<std::ptrdiff_t>(start));
    std::copy(revenue.begin(), revenue.end(), g.revenue.begin() + static_cast<std::ptrdiff_t>(start));
  }

  // The first k users' sums scaled to the population, and the standard error of that spend
  // estimate: sampling whole blocks without replacement, from the spread of the blocks' spend.
  Probe estimate(const Grown& g, size_t k) const {
    double sc = 0, sr = 0, sq = 0, nb = 0;
    for (size_t j0 = 0; j0 < k; j0 += kRolloutBlock) {
      double block = 0;
      for (size_t j = j0; j < std::min(k, j0 + kRolloutBlock); ++j) block += g.cost[j], sr += g.revenue[j];
      sc += block, sq += block * block, nb += 1;
    }
    const double n = static_cast<double>(k), N = static_cast<double>(users_.ids.size()), NB = N / kRolloutBlock;
    const double mean = sc / nb;
    const double var = nb > 1 ? std::max(0.0, (sq - nb * mean * mean) / (nb - 1)) : 0.0;
    const double se = NB * std::sqrt(var * std::max(0.0, 1.0 / nb - 1.0 / NB));
    return Probe{g.lambda, sr * N / n, sc * N / n, k, se};
  }

  // The parts of a probe grown to every user, as the rollout on every user: per (round, user)
  // outcomes read in population order from the parts (no copy of them), summed as rollout()
  // sums them, the budget rule replayed; the plan put in population order when it is one
  // (the budget rule withholds nothing).
  RolloutResult merge(const Grown& g) const {
    const size_t N = users_.ids.size(), R = base_.rounds, A = base_.env->action_sizes().size();
    std::vector<std::pair<uint32_t, uint32_t>> where(N);  // user i: (part, its index there)
    RolloutResult out;
    for (size_t k = 0; k < g.chunks.size(); ++k) {
      const Chunk& c = g.chunks[k];
      for (size_t j = 0; j < c.idx.size(); ++j) where[c.idx[j]] = {static_cast<uint32_t>(k), static_cast<uint32_t>(j)};
      out.coupons += c.r.coupons;
    }
    const auto at = [&](const std::vector<double> RolloutResult::*field) {
      return [&g, &where, field](size_t t, size_t i) {
        const Chunk& c = g.chunks[where[i].first];
        return (c.r.*field)[t * c.idx.size() + where[i].second];
      };
    };
    const auto reward = at(&RolloutResult::user_reward), cost = at(&RolloutResult::user_cost), largest = at(&RolloutResult::user_largest);
    out.revenue_by_round.assign(R, 0.0);
    out.cost_by_round.assign(R, 0.0);
    for (size_t t = 0; t < R; ++t) {
      for (size_t i = 0; i < N; ++i) {
        out.revenue_by_round[t] += reward(t, i);
        out.cost_by_round[t] += cost(t, i);
      }
      out.revenue += out.revenue_by_round[t];
      out.cost += out.cost_by_round[t];
    }
    out.fits_budget = !budget_rule_withholds(largest, cost, N, base_.rounds, base_.wave_users, search_.budget);
    if (!out.fits_budget) return out;  // not a plan: only its sums are read
    out.plan.assign(N * R * A, 0);
    for (const Chunk& c : g.chunks) {
      for (size_t j = 0; j < c.idx.size(); ++j) std::copy_n(c.r.plan.data() + j * R * A, R * A, out.plan.data() + c.idx[j] * R * A);
    }
    return out;
  }

  void report(const Probe& p) {
    out_.trace.push_back(p);
    if (search_.on_probe) search_.on_probe(p, out_.rollouts + out_.sample_rollouts);
  }

  // The last two probes that are plans (the search ends at one of its latest probes).
  void keep(double lambda, RolloutResult&& r) {
    if (kept_.size() == 2) kept_.erase(kept_.begin());
    kept_.emplace_back(lambda, std::move(r));
  }

  const RolloutSpec& base_;
  const RolloutUsers& users_;
  const SearchSpec& search_;
  int max_;
  SearchResult& out_;
  std::vector<Probe> full_;
  std::vector<std::pair<double, RolloutResult>> kept_;
  std::unique_ptr<Sampler> sampler_;
  std::vector<Grown> grown_;
  uint64_t clock_ = 0;
};

// A bracket of C(λ) around a goal: C(lo) > goal >= C(hi).
struct Bracket {
  Probe lo, hi;
};

// Regula falsi with the Illinois fix on C(λ) - goal inside a bracket, until C(hi) is within
// `width` below the goal, the bracket is narrower than `tiny`, or `steps` probes were made.
// `b` holds the bracket as it stands, also when a probe throws. `log`: the secant on
// log C(λ) - log goal instead (C falls about exponentially in λ, so from a wide bracket this
// takes a few steps where the plain secant crawls).
// `se_share`: also stop once either end is within that many of its standard errors of the
// band's middle (a subsample's estimate is no more precise than that). Returns the end the
// search stopped at: hi, or lo when that one is the end within the standard errors.
// `aim`: the secant seeks C(λ) = aim instead of the goal (the band's middle: fewer probes
// overshoot it); the bracket's ends are still sides of the goal.
Probe illinois(const std::function<Probe(double)>& at, Bracket& b, double goal, double width, double tiny, int steps, bool log = false, double se_share = 0,
               double aim = std::numeric_limits<double>::quiet_NaN()) {
  int stale = 0;  // Illinois: halve the weight of an end that keeps being kept
  double w_lo = 1, w_hi = 1;
  const double target = std::isnan(aim) ? goal : aim;
  const auto f = [&](double cost) { return log ? std::log(std::max(cost, 1e-9 * target)) - std::log(target) : cost - target; };
  const double middle = goal - 0.5 * width;
  const auto near = [&](const Probe& p) { return se_share > 0 && std::abs(p.cost - middle) <= se_share * p.se; };
  const auto searching = [&] { return b.hi.cost < goal - width && !near(b.hi) && !near(b.lo); };
  for (int i = 0; i < steps && searching() && b.hi.lambda - b.lo.lambda > tiny; ++i) {
    // secant on C(λ) - goal, kept inside the bracket and away from its ends
    const double flo = f(b.lo.cost) * w_lo, fhi = f(b.hi.cost) * w_hi;
    double lambda = b.lo.lambda + (b.hi.lambda - b.lo.lambda) * flo / (flo - fhi);
    const double margin = 0.02 * (b.hi.lambda - b.lo.lambda);
    lambda = std::clamp(lambda, b.lo.lambda + margin, b.hi.lambda - margin);
    if (stale >= 2) lambda = 0.5 * (b.lo.lambda + b.hi.lambda);
    const Probe p = at(lambda);
    if (p.cost > goal) {
      b.lo = p;
      w_lo = 1;
      w_hi *= 0.5;
      ++stale;
    } else {
      b.hi = p;
      w_hi = 1;
      w_lo *= 0.5;
      stale = 0;
    }
  }
  return near(b.lo) && !near(b.hi) && !(b.hi.cost >= goal - width) ? b.lo : b.hi;
}

// The exhaustive search: every probe on every user, from the ends of [0, λmax] (or from a
// bracket `start` already probed on every user, then aimed at the band's middle).
void bisection(Prober& probe, const SearchSpec& s, SearchResult& out, const Bracket* start = nullptr) {
  const double B = s.budget;
  Bracket b;
  if (start) {
    b = *start;
  } else {
    const Probe p0 = probe.at(0.0);
    if (p0.cost <= B) {
      out.budget_not_binding = true;
      out.feasible = true;
      probe.finish(0.0, B);
      return;
    }
    const Probe pmax = probe.at(s.lambda_max);
    if (pmax.cost > B) {
      out.needs_more_than_lambda_max = true;
      probe.finish(s.lambda_max, B, true);
      return;
    }
    b = Bracket{p0, pmax};
  }
  try {
    illinois([&](double lambda) { return probe.at(lambda); }, b, B, s.epsilon, 1e-6 * s.lambda_max, std::numeric_limits<int>::max(), false, 0,
             start ? B - 0.5 * s.epsilon : std::numeric_limits<double>::quiet_NaN());
  } catch (const Exhausted&) {
  }
  out.feasible = true;
  if (b.hi.cost >= B - s.epsilon) {
    probe.finish(b.hi.lambda, B);
    return;
  }
  // C(λ) jumps over [B - ε, B] (greedy decisions switch together): the plan at the
  // over-budget end, cut at B by the environment, may use the budget better. Keep the
  // better of the two enforced plans.
  RolloutResult at_hi = probe.enforced(b.hi.lambda, B);
  RolloutResult at_lo = probe.enforced(b.lo.lambda, B, true);
  if (at_lo.revenue > at_hi.revenue) {
    out.plan = std::move(at_lo);
    out.lambda = b.lo.lambda;
  } else {
    out.plan = std::move(at_hi);
    out.lambda = b.hi.lambda;
  }
}

// Subsampled bracketing, grown to every user. The spend of the first n users of a seeded
// permutation of the N users (by blocks, Sampler), scaled by N / n, estimates C(λ) with standard
// error SE = N s sqrt(1/n - 1/N), s the spread (standard deviation) of users' spend at λ (from
// the blocks' spend: users in a block may be alike, e.g. neighbours in a log). A probe at
// λ grows over the permutation (Prober::grow: kAim, 2 kAim, 4 kAim, ... users, then everyone)
// and never runs a user twice at one λ: grown to every user it has cost one rollout, and the
// subsample's rollouts at that λ are part of it. Then:
//   1. the bracket on the first kCoarse users, aimed at the middle of the band, T = B - ε/2, to
//      within ε/8 or one standard error of that subsample's estimate (it is no more precise);
//   2. the probe at its λ grows; at each size beyond what the latest probe already measured it
//      is dropped when its estimate lies more than kAbortZ standard errors outside the band;
//      grown to every user, it is kept when B - ε <= C <= B (exactly the exhaustive search's
//      criterion, on every user), and its rollout is the plan when its budget rule withholds
//      nothing;
//   3. otherwise the next λ is where the first kAim users' curve, shifted to pass through what
//      the dropped or completed probe measured, meets T (C(λ') ≈ C(λ) + Ĉ(λ') - Ĉ(λ): the same
//      users' spend at two nearby λ differs little - correlation 0.99 at λ* ± 3% on SY - so the
//      shift is precise near λ), found to within ε/4 by log-secant steps on those users, or
//      interpolated between two of them on both sides; back to 2, up to kAims times, or until
//      probes on every user lie on both sides of the band (the last of them is not dropped);
//   4. then the exhaustive search inside the bracket of the probes on every user, its secant
//      aimed at the band's middle.
// Spend varies across users about as much as its mean (SY: coefficient of variation ~1), so
// the first kAim users place C(λ) within ~3% (band: ±1%): a probe grown from there is often
// dropped part-way, and the next, aimed through what it measured, lands in the band. Measured
// with a model trained on SY 10,000 x 10 (`saco train` defaults) at 0.5x, 32 sets of 10,000
// users: 1.9 rollouts' worth of users per search on average (each λ's largest probe summed;
// 1.1 to 2.6), 1.2 of them probes on every user, against 2.5 and 1.6 for bracketing on a fixed
// subsample of 1024 users and then probing everyone (means over 32 cases move by ±0.2 with the
// draw of the subsample). Growing by x1.5, dropping at 1 or 2.5 standard errors, a
// coarse subsample of 128 or 512 users, or stopping it at 2 standard errors did no better; nor
// did counting, in a probe's estimate, the users an earlier probe ran at a nearby λ (scaled by
// the two λ's spend ratio on the first users) while growing first over users no probe had run,
// nor testing a probe, after one on every user, by the difference of the two on the same users.
// The budget
// not binding at λ = 0, or binding even at λmax, is decided by probes on every user too.
// Policies that learn across users are searched exhaustively (a subsample would change what
// they learn), and so are populations under kMinUsers.
constexpr size_t kCoarse = 256;
constexpr size_t kAim = 1024;
constexpr size_t kMinUsers = 8 * kAim;
constexpr int kAims = 4;
constexpr double kZ = 2;
constexpr double kAbortZ = 2;

// d log C / dλ near λ from the probes `curve` has (the nearest on either side), else the mean
// over [0, λmax]; negative.
double log_slope(const std::vector<Probe>& curve, double lambda, double lambda_max) {
  const Probe* below = nullptr;
  const Probe* above = nullptr;
  for (const Probe& p : curve) {
    if (!(p.cost > 0)) continue;
    if (p.lambda <= lambda && (!below || p.lambda > below->lambda)) below = &p;
    if (p.lambda > lambda && (!above || p.lambda < above->lambda)) above = &p;
  }
  if (below && above) {
    const double s = (std::log(above->cost) - std::log(below->cost)) / (above->lambda - below->lambda);
    if (s < 0 && std::isfinite(s)) return s;
  }
  return -8 / lambda_max;
}

// A λ in (lo, hi) where `curve` is within tol of goal, from `start` on it: log-secant steps
// (the first with `slope`) until a probe lands within tol, or two probes lie on both sides of
// the goal: then the λ between them where log C interpolates to the goal, not probed here (the
// caller's probe there starts with the same users: nothing is run twice). Returns the λ it
// ended at.
double seek(const std::function<Probe(double)>& curve, const Probe& start, double slope, double goal, double tol, double lo, double hi, int steps) {
  if (std::abs(start.cost - goal) <= tol) return start.lambda;
  const double margin = 0.01 * (hi - lo);
  const auto log_cost = [&](double c) { return std::log(std::max(c, 1e-9 * goal)); };
  Probe prev = start, cur = start;
  for (int i = 0; i < steps; ++i) {
    double s = slope;
    if (cur.lambda != prev.lambda) {
      const double secant = (log_cost(cur.cost) - log_cost(prev.cost)) / (cur.lambda - prev.lambda);
      if (secant < 0 && std::isfinite(secant)) s = secant;
    }
    const double lambda = std::clamp(cur.lambda + (std::log(goal) - log_cost(cur.cost)) / s, lo + margin, hi - margin);
    if (lambda == cur.lambda) break;
    const Probe p = curve(lambda);
    if (std::abs(p.cost - goal) <= tol) return p.lambda;
    prev = cur;
    cur = p;
    const Probe& a = prev.lambda < cur.lambda ? prev : cur;
    const Probe& b = prev.lambda < cur.lambda ? cur : prev;
    if (a.cost > goal && b.cost <= goal) {
      const double w = (log_cost(a.cost) - std::log(goal)) / (log_cost(a.cost) - log_cost(b.cost));
      return a.lambda + std::clamp(w, 0.0, 1.0) * (b.lambda - a.lambda);
    }
  }
  return cur.lambda;
}

void subsampled_bisection(Prober& probe, const RolloutSpec& base, const RolloutUsers& users, const SearchSpec& s, SearchResult& out) {
  const size_t N = users.ids.size();
  const double B = s.budget, eps = s.epsilon, T = B - 0.5 * eps, h = eps / 8, tiny = 1e-6 * s.lambda_max;
  if (N < kMinUsers || !(eps > 0) || base.policy->learns_across_users()) return bisection(probe, s, out);
  probe.sample(s.seed);
  std::vector<Probe> coarse;  // the curve on the first kCoarse users
  const std::function<Probe(double)> coarse_at = [&](double lambda) {
    const Probe p = probe.grow(lambda, kCoarse);
    coarse.push_back(p);
    return p;
  };
  const std::function<Probe(double)> aim_at = [&](double lambda) { return probe.grow(lambda, kAim); };
  try {
    // the ends: clearly not binding, or clearly binding at λmax, is checked on every user;
    // too close to call: the exhaustive search
    const Probe e0 = coarse_at(0.0);
    if (e0.cost + kZ * e0.se <= B) {
      const Probe p0 = probe.at(0.0);
      if (p0.cost <= B) {
        out.budget_not_binding = out.feasible = true;
        probe.finish(0.0, B);
        return;
      }
      return bisection(probe, s, out);
    }
    if (e0.cost - kZ * e0.se <= B) return bisection(probe, s, out);
    const Probe em = coarse_at(s.lambda_max);
    if (em.cost - kZ * em.se > B) {
      const Probe pmax = probe.at(s.lambda_max);
      if (pmax.cost > B) {
        out.needs_more_than_lambda_max = true;
        probe.finish(s.lambda_max, B, true);
        return;
      }
      return bisection(probe, s, out);
    }
    if (em.cost > T + h) return bisection(probe, s, out);
    Bracket b{e0, em};
    double lambda = illinois(coarse_at, b, T + h, 2 * h, tiny, s.max_rollouts, true, 1.0).lambda;
    // grown towards every user, dropped part-way when clearly out of the band, re-aimed
    Bracket full{Probe{0, 0, std::numeric_limits<double>::infinity(), N}, Probe{s.lambda_max, 0, -std::numeric_limits<double>::infinity(), N}};
    bool have_lo = false, have_hi = false;
    size_t measured = kCoarse;  // users the latest estimate rests on: growth is tested only beyond
    for (int aim = 0; aim < kAims; ++aim) {
      Probe p{};
      bool dropped = false;
      for (size_t k = kAim;; k = std::min(N, 2 * k)) {
        p = probe.grow(lambda, k);
        if (k >= N) break;
        // (the last one grows to every user: a side of the band on every user, not the ends' probes)
        if (aim + 1 < kAims && k > measured && std::abs(p.cost - T) > 0.5 * eps + kAbortZ * p.se) {
          dropped = true;
          break;
        }
      }
      if (!dropped) {
        if (p.cost <= B && p.cost >= B - eps) {
          out.feasible = true;
          probe.finish(lambda, B);
          return;
        }
        if (p.cost > B && (!have_lo || p.lambda > full.lo.lambda)) full.lo = p, have_lo = true;
        if (p.cost <= B && (!have_hi || p.lambda < full.hi.lambda)) full.hi = p, have_hi = true;
        // probes on every user on both sides: their secant is better than the subsample's
        if (have_lo && have_hi) break;
      }
      measured = p.users;
      // where the first kAim users' curve, shifted to pass through this probe, meets T
      const Probe here = aim_at(lambda);
      const double goal = T - (p.cost - here.cost);
      if (!(goal > 0)) break;
      const double lo = have_lo ? full.lo.lambda : 0.0, hi = have_hi ? full.hi.lambda : s.lambda_max;
      const double next = seek(aim_at, here, log_slope(coarse, lambda, s.lambda_max), goal, 2 * h, lo, hi, 6);
      if (next == lambda && !dropped) break;
      lambda = next;
    }
    // the exhaustive search inside the bracket the probes on every user make
    if (!have_lo) full.lo = probe.at(0.0);
    if (!have_hi) full.hi = probe.at(s.lambda_max);
    if (full.lo.cost <= B) {  // not binding after all
      out.budget_not_binding = out.feasible = true;
      probe.finish(0.0, B);
      return;
    }
    if (full.hi.cost > B) {
      out.needs_more_than_lambda_max = true;
      probe.finish(s.lambda_max, B, true);
      return;
    }
    return bisection(probe, s, out, &full);
  } catch (const Exhausted&) {
    // the allowance of probes is spent: the exhaustive search's ending with what is known
    return bisection(probe, s, out);
  }
}

struct SlsqpData {
  Prober* probe;
  double budget, h, lambda_max;
  nlopt_opt opt = nullptr;
  bool exhausted = false;
};

// Algorithm 2's OBJECTIVE: λ·max(C - B, 0) - R, with a forward-difference gradient.
double slsqp_objective(unsigned n, const double* x, double* grad, void* data) {
  (void)n;
  auto* d = static_cast<SlsqpData*>(data);
  const auto f = [&](double lambda) {
    const Probe p = d->probe->at(lambda);
    return lambda * std::max(p.cost - d->budget, 0.0) - p.revenue;
  };
  // No C++ exception may cross NLopt's C frames: stop the optimiser instead.
  try {
    const double fx = f(x[0]);
    if (grad) {
      const double step = x[0] + d->h <= d->lambda_max ? d->h : -d->h;
      grad[0] = (f(x[0] + step) - fx) / step;
    }
    return fx;
  } catch (const Exhausted&) {
    d->exhausted = true;
    nlopt_force_stop(d->opt);
    return HUGE_VAL;
  }
}

void slsqp(Prober& probe, const SearchSpec& s, SearchResult& out) {
  const double B = s.budget;
  const double lr = s.lr > 0 ? s.lr : 0.5 * s.lambda_max / B;
  CounterStream rng(s.seed, 0, 0, 7);
  double lambda = rng.uniform() * s.lambda_max;
  double best_r = -std::numeric_limits<double>::infinity();
  double best_lambda = s.lambda_max;
  bool found = false;
  SlsqpData data{&probe, B, 1e-3 * s.lambda_max, s.lambda_max};
  try {
  for (int it = 0; it < s.max_iterations; ++it) {
    double x = std::clamp(lambda + (2 * rng.uniform() - 1) * s.noise * s.lambda_max, 0.0, s.lambda_max);
    nlopt_opt opt = nlopt_create(NLOPT_LD_SLSQP, 1);
    const double lb = 0, ub = s.lambda_max;
    nlopt_set_lower_bounds(opt, &lb);
    nlopt_set_upper_bounds(opt, &ub);
    data.opt = opt;
    nlopt_set_min_objective(opt, slsqp_objective, &data);
    nlopt_set_maxeval(opt, 3);
    nlopt_set_xtol_abs1(opt, 1e-4 * s.lambda_max);
    double minf = 0;
    // A failed SLSQP step still leaves x at the last point it tried: keep going from there.
    nlopt_optimize(opt, &x, &minf);
    nlopt_destroy(opt);
    if (data.exhausted) break;
    lambda = std::clamp(x, 0.0, s.lambda_max);
    const Probe p = probe.at(lambda);
    if (B - s.epsilon <= p.cost && p.cost <= B) break;
    lambda = std::clamp(lambda + lr * (p.cost - B), 0.0, s.lambda_max);
  }
  } catch (const Exhausted&) {
  }
  // "keep the best feasible R": over every λ simulated, inside SLSQP's steps too
  for (const Probe& p : out.trace) {
    if (p.cost <= B && p.revenue > best_r) {
      best_r = p.revenue;
      best_lambda = p.lambda;
      found = true;
    }
  }
  out.feasible = found;
  // nothing feasible, and even the top of the range overspent when it was tried
  out.needs_more_than_lambda_max = !found && std::any_of(out.trace.begin(), out.trace.end(), [&](const Probe& p) {
    return p.lambda >= s.lambda_max * (1 - 1e-9) && p.cost > B;
  });
  probe.finish(best_lambda, B);
}

}  // namespace

void validate_search(const SearchSpec& s) {
  require(std::isfinite(s.budget) && s.budget > 0, "budget must be finite and > 0");
  require(std::isfinite(s.epsilon) && s.epsilon >= 0 && s.epsilon < s.budget, "epsilon must be in [0, budget)");
  require(std::isfinite(s.lambda_max) && s.lambda_max > 0, "lambdaMax must be > 0");
  require(s.max_rollouts >= 3 && s.max_rollouts <= 10000, "maxRollouts must be in [3, 10000]");
  require(s.max_iterations >= 1 && s.max_iterations <= 1000, "maxIterations must be in [1, 1000]");
  require(std::isfinite(s.noise) && s.noise >= 0 && s.noise <= 1, "noise must be in [0, 1]");
  require(std::isfinite(s.lr) && s.lr >= 0, "lr must be >= 0");
}

SearchResult search_lambda(const RolloutSpec& base, const RolloutUsers& users, const SearchSpec& search) {
  validate_search(search);
  validate_rollout(base, users);
  SearchResult out;
  Prober probe(base, users, search, out);
  if (search.method == SearchMethod::kSlsqp) slsqp(probe, search, out);
  else if (search.subsample) subsampled_bisection(probe, base, users, search, out);
  else bisection(probe, search, out);
  return out;
}

}  // namespace saco
