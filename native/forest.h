// A multi-arm causal forest with honest trees (Wager & Athey 2018; Athey, Tibshirani & Wager
// 2019, "Generalized random forests"), written from the papers. It predicts, for every arm k,
// the uplift over the control arm of two outcomes, reward and cost: τ_k(x) = E[Y(k) − Y(0) | x].
//
// Training, per tree b (every draw keyed by (seed, b), so the forest does not depend on the
// thread count):
//   1. a subsample of `sample_fraction`·n rows without replacement, cut into a splitting half
//      and an estimation half (`honesty_fraction`);
//   2. the tree is grown on the splitting half only. At node P, with one-hot arms W, arm shares
//      p_k and arm means Ȳ_k, GRF's gradient pseudo-outcome ρ_i = A_P⁻¹ (W_i − W̄)(Y_i − Ȳ −
//      (W_i − W̄)ᵀ τ̂_P) reduces for one-hot W (A_P = diag(p) − ppᵀ) to
//          ρ_i[k] = (Y_i − Ȳ_{a_i}) · ([a_i = k] / p_k − [a_i = 0] / p_0)     (k = 1..K−1),
//      one entry per (arm, outcome), each outcome divided by its noise level on the splitting
//      half (pooled standard deviation around the arm means) so reward and cost weigh alike. The split maximises the CART criterion on ρ,
//      Σ_children |Σ_{i∈child} ρ_i|² / n_child, over `mtry` random features and the quantile
//      cut points of each (at most `bins` per feature); every child keeps at least
//      max(min_node_size, alpha · parent's count) rows of every arm;
//   3. the leaves are filled from the estimation half only: per leaf and arm, the row count and
//      the sums of reward and cost. The splitting half's outcomes never reach a leaf.
// Prediction at x (GRF's forest weights α_i(x) = (1/B) Σ_b [i ∈ L_b(x)] / |L_b(x)|): the
// α-weighted mean of each outcome per arm, minus the control arm's. These are the solution of
// GRF's weighted estimating equation for (intercept, τ) with one-hot arms, computed from the
// leaf sums without keeping the rows. An arm with no weight at x gets uplift 0.
//
// Not done (see the report of the forest policy): GRF's local centering (Y − m̂(X), W − ê(X)),
// which matters when the log's arms depend on x (a biased logger); the forest then estimates
// within-leaf differences in means.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace saco {

struct ForestOptions {
  uint32_t trees = 100;
  double sample_fraction = 0.5;   // of the rows, per tree, without replacement
  double honesty_fraction = 0.5;  // of the subsample, to grow the tree; the rest fills the leaves
  uint32_t mtry = 0;              // features tried per split; 0: min(ceil(√d + 20), d) as GRF
  uint32_t min_node_size = 5;     // rows of every arm in each child (splitting half), as GRF
  double alpha = 0.05;            // each child keeps ≥ alpha of the parent's rows of every arm
  uint32_t max_depth = 64;
  uint32_t bins = 128;            // quantile cut points per feature, at most (≤ 255)
  uint64_t seed = 1;
  uint32_t threads = 0;           // 0: every core; the forest does not depend on it
};

// The training rows: one per (user, round) unit.
struct ForestData {
  uint32_t rows = 0, features = 0, arms = 0, control = 0;
  std::vector<float> x;          // [rows, features]
  std::vector<int32_t> arm;      // [rows] in [0, arms)
  std::vector<double> reward;    // [rows]
  std::vector<double> cost;      // [rows]
};

// One tree: nodes in creation order (a child's index is above its parent's). A node with
// feature < 0 is a leaf and `left` is its leaf index.
struct ForestTree {
  std::vector<int32_t> feature, left, right;
  std::vector<float> threshold;  // x[feature] <= threshold goes left
  // [leaves, arms, 3]: count, sum of reward, sum of cost of the estimation rows per arm
  std::vector<double> leaf;
  // The leaf of x [features].
  int32_t leaf_of(const float* x) const;
};

class CausalForest {
 public:
  uint32_t features = 0, arms = 0, control = 0;
  uint32_t rows = 0;              // training rows (the halves are redrawn from it)
  ForestOptions options;
  std::vector<ForestTree> trees;

  // Uplift over control of every arm for each row of x [n, features]:
  // reward_uplift and cost_uplift [n, arms], 0 in the control column.
  void predict(const float* x, size_t n, double* reward_uplift, double* cost_uplift) const;
  // The rows of tree b's splitting half and estimation half (redrawn from the seed).
  void halves(uint32_t b, std::vector<uint32_t>& split, std::vector<uint32_t>& estimate) const;
};

// Throws std::invalid_argument naming what is wrong with the data or options.
void validate_forest_input(const ForestData& data, const ForestOptions& options);
std::unique_ptr<CausalForest> fit_forest(const ForestData& data, const ForestOptions& options);

// A versioned little-endian byte format; load validates every index and number.
std::vector<uint8_t> save_forest(const CausalForest& forest);
std::unique_ptr<CausalForest> load_forest(const uint8_t* bytes, size_t size);
// Throws std::invalid_argument when a tree's structure or statistics are inconsistent.
void validate_forest(const CausalForest& forest);

// Forests handed to JavaScript by id (> 0), shared read-only by every thread and worker_thread.
int64_t forest_add(std::shared_ptr<const CausalForest> forest);
std::shared_ptr<const CausalForest> forest_get(int64_t id);
bool forest_remove(int64_t id);
size_t forest_count();

}  // namespace saco
