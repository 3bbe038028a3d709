#include "dual.h"

#include <nlopt.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "rng.h"

namespace saco {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

// Thrown when the rollout allowance is spent; the search then finishes with what it has.
struct Exhausted {};

class Prober {
 public:
  Prober(const RolloutSpec& base, const RolloutUsers& users, const SearchSpec& search, SearchResult& out)
      : base_(base), users_(users), search_(search), max_(search.max_rollouts), out_(out) {}

  // Natural spend and revenue at λ (no budget enforcement).
  Probe at(double lambda) {
    if (out_.rollouts >= max_ - 1) throw Exhausted{};  // keep one rollout for the final plan
    RolloutSpec spec = base_;
    spec.lambda = lambda;
    spec.budget = std::numeric_limits<double>::infinity();
    spec.record_plan = false;
    const RolloutResult r = rollout(spec, users_);
    ++out_.rollouts;
    const Probe p{lambda, r.revenue, r.cost};
    out_.trace.push_back(p);
    if (search_.on_probe) search_.on_probe(p, out_.rollouts);
    return p;
  }

  // The plan at λ with the budget enforced by the environment.
  RolloutResult enforced(double lambda, double budget) {
    RolloutSpec spec = base_;
    spec.lambda = lambda;
    spec.budget = budget;
    spec.record_plan = true;
    ++out_.rollouts;
    return rollout(spec, users_);
  }

  void finish(double lambda, double budget) {
    out_.plan = enforced(lambda, budget);
    out_.lambda = lambda;
  }

 private:
  const RolloutSpec& base_;
  const RolloutUsers& users_;
  const SearchSpec& search_;
  int max_;
  SearchResult& out_;
};

void bisection(Prober& probe, const SearchSpec& s, SearchResult& out) {
  const double B = s.budget;
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
    probe.finish(s.lambda_max, B);
    return;
  }
  Probe lo = p0, hi = pmax;  // C(lo) > B >= C(hi)
  int stale = 0;             // Illinois: halve the weight of an end that keeps being kept
  double w_lo = 1, w_hi = 1;
  try {
    while (hi.cost < B - s.epsilon && hi.lambda - lo.lambda > 1e-6 * s.lambda_max) {
      // secant on C(λ) - B, kept inside the bracket and away from its ends
      const double flo = (lo.cost - B) * w_lo, fhi = (hi.cost - B) * w_hi;
      double lambda = lo.lambda + (hi.lambda - lo.lambda) * flo / (flo - fhi);
      const double margin = 0.02 * (hi.lambda - lo.lambda);
      lambda = std::clamp(lambda, lo.lambda + margin, hi.lambda - margin);
      if (stale >= 2) lambda = 0.5 * (lo.lambda + hi.lambda);
      const Probe p = probe.at(lambda);
      if (p.cost > B) {
        lo = p;
        w_lo = 1;
        w_hi *= 0.5;
        ++stale;
      } else {
        hi = p;
        w_hi = 1;
        w_lo *= 0.5;
        stale = 0;
      }
    }
  } catch (const Exhausted&) {
  }
  out.feasible = true;
  if (hi.cost >= B - s.epsilon) {
    probe.finish(hi.lambda, B);
    return;
  }
  // C(λ) jumps over [B - ε, B] (greedy decisions switch together): the plan at the
  // over-budget end, cut at B by the environment, may use the budget better. Keep the
  // better of the two enforced plans.
  RolloutResult at_hi = probe.enforced(hi.lambda, B);
  RolloutResult at_lo = probe.enforced(lo.lambda, B);
  if (at_lo.revenue > at_hi.revenue) {
    out.plan = std::move(at_lo);
    out.lambda = lo.lambda;
  } else {
    out.plan = std::move(at_hi);
    out.lambda = hi.lambda;
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
  else bisection(probe, search, out);
  return out;
}

}  // namespace saco
