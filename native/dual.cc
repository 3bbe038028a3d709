#include "dual.h"

#include <nlopt.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
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

// The subsample: the first n users of a seeded permutation of the population (so a larger
// subsample contains the smaller), in population order.
class Sampler {
 public:
  Sampler(const RolloutUsers& users, uint64_t seed) : users_(users), order_(users.ids.size()) {
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    CounterStream rng(seed, 0, 0, kStreamSubsample);
    for (size_t i = order_.size(); i > 1; --i) {  // Fisher-Yates
      const auto j = static_cast<size_t>(std::min(rng.uniform() * static_cast<double>(i), static_cast<double>(i - 1)));
      std::swap(order_[i - 1], order_[j]);
    }
  }

  RolloutUsers take(size_t n) const {
    std::vector<size_t> pick(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(n));
    std::sort(pick.begin(), pick.end());
    const size_t width = users_.features.size() / users_.ids.size();
    RolloutUsers out;
    out.ids.reserve(n);
    out.features.reserve(n * width);
    for (size_t i : pick) {
      out.ids.push_back(users_.ids[i]);
      out.features.insert(out.features.end(), users_.features.begin() + static_cast<std::ptrdiff_t>(i * width),
                          users_.features.begin() + static_cast<std::ptrdiff_t>((i + 1) * width));
    }
    return out;
  }

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
  // for finish(). A λ already probed is not run again.
  Probe at(double lambda) {
    for (const Probe& p : full_) {
      if (p.lambda == lambda) return p;
    }
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

  // The same on a subsample: its sums scaled to the population, and the standard error of
  // that spend estimate (sampling without replacement, from the spread of users' spend).
  Probe at_sample(double lambda, const RolloutUsers& sample, double* se) {
    if (out_.sample_rollouts >= max_) throw Exhausted{};
    RolloutSpec spec = base_;
    spec.lambda = lambda;
    spec.budget = std::numeric_limits<double>::infinity();
    spec.record_plan = false;
    const RolloutResult r = rollout(spec, sample);
    ++out_.sample_rollouts;
    const double n = static_cast<double>(sample.ids.size()), N = static_cast<double>(users_.ids.size());
    const double mean = r.cost / n;
    const double var = n > 1 ? std::max(0.0, (r.cost_sq - n * mean * mean) / (n - 1)) : 0.0;
    *se = N * std::sqrt(var * std::max(0.0, 1.0 / n - 1.0 / N));
    const Probe p{lambda, r.revenue * N / n, r.cost * N / n, sample.ids.size(), *se};
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

// Subsampled bracketing. The spend of a subsample of n of the N users, scaled by N / n,
// estimates C(λ) with standard error SE = N s sqrt(1/n - 1/N), s the spread (standard
// deviation) of users' spend at λ. The bracket is found on a subsample of kFirstSample users
// aimed at the middle of the band, T = B - ε/2, to within ±ε/8 (or half a standard error of the
// subsample's estimate, whichever is wider: it is no more precise). The subsample then grows
// (nested, once) to the size whose SE at that λ is 3ε/16 - two standard errors plus the
// search's ±ε/8 inside the band's half-width ε/2 - computed from s measured there, but to at
// most N/16: beyond that the subsample costs more than the full probes it saves. Then:
//   1. a probe on every user at the subsample's λ; kept when B - ε <= C <= B (exactly the
//      exhaustive search's criterion, on every user);
//   2. otherwise the subsample's curve, corrected by what the full probe measured
//      (C(λ') ≈ C(λ) + Ĉ(λ') - Ĉ(λ): the same users' spend at two nearby λ differs little,
//      so the correction is precise near λ), picks the next λ for a probe on every user; up to
//      kCorrections times, until probes on every user lie on both sides of the band;
//   3. then the exhaustive search inside the bracket of the probes on every user, its secant
//      aimed at the band's middle.
// The budget not binding at λ = 0, or binding even at λmax, is decided by probes on every
// user too. Policies that learn across users are searched exhaustively (a subsample would
// change what they learn), and so are populations under kMinUsers.
constexpr size_t kFirstSample = 1024;
constexpr size_t kMinUsers = 8 * kFirstSample;
constexpr int kCorrections = 3;
constexpr double kZ = 2;

void subsampled_bisection(Prober& probe, const RolloutSpec& base, const RolloutUsers& users, const SearchSpec& s, SearchResult& out) {
  const size_t N = users.ids.size();
  const double B = s.budget, eps = s.epsilon, T = B - 0.5 * eps, h = eps / 8, tiny = 1e-6 * s.lambda_max;
  if (N < kMinUsers || !(eps > 0) || base.policy->learns_across_users()) return bisection(probe, s, out);
  const Sampler sampler(users, s.seed);
  size_t n = kFirstSample;
  RolloutUsers sample = sampler.take(n);
  out.sample_users = n;
  struct Estimate {
    Probe p;
    double se;
  };
  std::vector<Estimate> seen;  // on the current subsample
  auto at_sample = [&](double lambda) {
    for (const Estimate& e : seen) {
      if (e.p.lambda == lambda) return e;
    }
    Estimate e{};
    e.p = probe.at_sample(lambda, sample, &e.se);
    seen.push_back(e);
    return e;
  };
  auto sample_probe = [&](double lambda) { return at_sample(lambda).p; };
  try {
    // the ends, on the subsample: clearly not binding, or clearly binding at λmax, is checked
    // on every user; too close to call: the exhaustive search
    const Estimate e0 = at_sample(0.0);
    if (e0.p.cost + kZ * e0.se <= B) {
      const Probe p0 = probe.at(0.0);
      if (p0.cost <= B) {
        out.budget_not_binding = out.feasible = true;
        probe.finish(0.0, B);
        return;
      }
      return bisection(probe, s, out);
    }
    if (e0.p.cost - kZ * e0.se <= B) return bisection(probe, s, out);
    const Estimate em = at_sample(s.lambda_max);
    if (em.p.cost - kZ * em.se > B) {
      const Probe pmax = probe.at(s.lambda_max);
      if (pmax.cost > B) {
        out.needs_more_than_lambda_max = true;
        probe.finish(s.lambda_max, B, true);
        return;
      }
      return bisection(probe, s, out);
    }
    if (em.p.cost > T + h) return bisection(probe, s, out);
    // the bracket on the subsample, to T ± ε/8 or half a standard error, whichever is wider
    Bracket b{e0.p, em.p};
    Probe found = illinois(sample_probe, b, T + h, 2 * h, tiny, s.max_rollouts, true, 0.5);
    // the subsample's size from the spread of spend at its λ (nested: it only grows)
    const double se = found.se;
    const double sd = se / (static_cast<double>(N) * std::sqrt(1.0 / static_cast<double>(n) - 1.0 / static_cast<double>(N)));
    const double target_se = 3 * eps / 16;
    const double wanted = sd > 0 ? 1.0 / (std::pow(target_se / (static_cast<double>(N) * sd), 2) + 1.0 / static_cast<double>(N)) : 0.0;
    const size_t grown = std::min(N / 16, static_cast<size_t>(std::ceil(wanted)));
    if (grown > n) {
      n = grown;
      sample = sampler.take(n);
      out.sample_users = n;
      seen.clear();
      // the old bracket's ends, re-measured on the larger subsample (widened to [0, λmax]
      // where an end is no longer on its side)
      Probe lo = sample_probe(b.lo.lambda), hi = sample_probe(b.hi.lambda);
      if (!(lo.cost > T + h)) lo = sample_probe(0.0);
      if (hi.cost > T + h) hi = sample_probe(s.lambda_max);
      if (!(lo.cost > T + h) || hi.cost > T + h) return bisection(probe, s, out);
      b = Bracket{lo, hi};
      found = illinois(sample_probe, b, T + h, 2 * h, tiny, s.max_rollouts, true, 0.5);
    }
    // on every user, corrected by what each full probe measured
    double lambda = found.lambda;
    Bracket full{Probe{0, 0, std::numeric_limits<double>::infinity(), N}, Probe{s.lambda_max, 0, -std::numeric_limits<double>::infinity(), N}};
    bool have_lo = false, have_hi = false;
    for (int round = 0; round <= kCorrections; ++round) {
      const Probe p = probe.at(lambda);
      if (p.cost <= B && p.cost >= B - eps) {
        out.feasible = true;
        probe.finish(lambda, B);
        return;
      }
      if (p.cost > B && (!have_lo || p.lambda > full.lo.lambda)) full.lo = p, have_lo = true;
      if (p.cost <= B && (!have_hi || p.lambda < full.hi.lambda)) full.hi = p, have_hi = true;
      // probes on every user on both sides: their secant is better than the subsample's
      if (round == kCorrections || (have_lo && have_hi)) break;
      // where the subsample's curve, shifted to pass through this full probe, meets T
      const Estimate here = at_sample(lambda);
      const double goal = T - (p.cost - here.p.cost);
      Bracket sb{Probe{-1, 0, -std::numeric_limits<double>::infinity(), 0}, Probe{-1, 0, std::numeric_limits<double>::infinity(), 0}};
      for (const Estimate& e : seen) {  // the tightest bracket of goal among the subsample's probes
        if (e.p.cost > goal + h && (sb.lo.lambda < 0 || e.p.lambda > sb.lo.lambda)) sb.lo = e.p;
      }
      for (const Estimate& e : seen) {
        if (e.p.cost <= goal + h && e.p.lambda > sb.lo.lambda && (sb.hi.lambda < 0 || e.p.lambda < sb.hi.lambda)) sb.hi = e.p;
      }
      if (sb.lo.lambda < 0 || sb.hi.lambda < 0) break;
      illinois(sample_probe, sb, goal + h, 2 * h, tiny, s.max_rollouts, true);
      // never outside what the probes on every user already showed
      lambda = sb.hi.lambda;
      if ((have_lo && lambda <= full.lo.lambda) || (have_hi && lambda >= full.hi.lambda)) break;
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
