// The learned outcome model (DESIGN.md sections 5 and 6): gradient-boosted trees (XGBoost)
// that predict, from a design row x (state, action, history; built by src/sim/features.ts):
//
//   reward  P(r != 0 | x)                  binary:logistic    "pReward"
//           E[r | r != 0, x]               reg:squarederror   "eReward"
//   cost    P(c != 0 | x), E[c | c != 0, x]                   "pCost", "eCost"
//   next    per dynamic state feature j:   reg:squarederror   "next:<j>"
//           s_{t+1,j} - s_{t,j} from [x | r_t | c_t] (the round's realised outcome), plus the
//           residual standard deviation, so a simulator samples an outcome and then the state
//
// so that E[r | x] = P(r != 0 | x) * E[r | r != 0, x] (a hurdle model: a purchase and its
// basket); likewise for cost. The λ recipe relabels with the expectations, the simulator
// samples from the parts. "!= 0" is "> 0" for the usual non-negative rewards and costs.
//
// Every booster is trained single-threaded with a fixed seed; heads train in parallel on
// their own threads (one DMatrix per group of heads that share rows), and predictions split
// rows over threads. So results never depend on the thread count, and no OpenMP thread pool
// spins on a busy machine. A fitted or loaded model is read-only: share it between threads.
//
// Letters: n rows, p design columns, k dynamic state features.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "xgb.h"

namespace saco {

struct OutcomeParams {
  int rounds = 300;          // trees per head at most
  int depth = 3;
  double eta = 0.15;
  double subsample = 1.0;
  double min_child_weight = 1.0;
  double lambda = 1.0;
  int max_bin = 256;
  int early_stopping = 10;   // rounds without validation improvement; 0: off
  double tolerance = 1e-3;   // an improvement beats the best by this share of the gain since the first tree
  uint64_t seed = 0;
  unsigned threads = 0;      // 0: hardware concurrency; results do not depend on it
};

// A fit request: owned copies, so a worker thread can run it.
struct OutcomeSpec {
  uint64_t rows = 0, cols = 0;
  std::vector<float> features;      // [n, p], finite
  std::vector<float> reward, cost;  // [n], finite
  std::vector<float> weights;       // [n] >= 0, or empty (all 1)
  std::vector<uint8_t> validation;  // [n] 1: a validation row (early stopping, residuals), or empty
  bool fit_reward = true, fit_cost = true;
  std::vector<int32_t> next_from;   // [k] design column holding each dynamic feature's current value
  std::vector<float> next;          // [n, k] next round's value; NaN (the whole row) where no next round
  // Design columns that, all at 1, mark rows that cost nothing by construction (the
  // control action's one-hot when no logged control row had a cost): pCost is 0 there.
  std::vector<int32_t> zero_cost_columns;
  std::vector<std::string> names;   // [p] design column names, or empty
  std::string meta;                 // opaque to the core (src/sim stores its layout here)
  OutcomeParams params;
};

// What a head is and how its training went.
struct OutcomeHead {
  std::string name;             // pReward, eReward, pCost, eCost, next:<j>
  bool present = false;         // false: the head was not asked for
  bool constant = false;        // true: no booster (e.g. no nonzero rewards); predicts `value`
  double value = 0;             // the constant, or the base score the trees start from
  double residual_sd = 0;       // regression heads: sd of y - prediction (validation rows if any)
  int rounds = 0;               // trees kept
  int rounds_run = 0;
  double valid_metric = 0;      // logloss or rmse of the kept model on the validation rows; NaN without
  std::string metric;
  uint64_t train_rows = 0, valid_rows = 0;
  // CPU seconds of the thread that trained it (its group's DMatrix counts to the group's
  // first head); the heads of a group ran one after the other on one thread. Diagnostics of
  // the fit only: not saved (bytes must not depend on timing), 0 and -1 after load.
  double cpu_seconds = 0;
  int group = -1;  // heads with the same group trained on one thread, in order
  xgb::Booster booster;
};

class OutcomeModel {
 public:
  enum Head { kPReward = 0, kEReward = 1, kPCost = 2, kECost = 3, kFirstNext = 4 };

  static std::unique_ptr<OutcomeModel> fit(const OutcomeSpec& spec);
  // A model written by save(); throws std::invalid_argument on a bad header or truncation.
  static std::unique_ptr<OutcomeModel> load(const uint8_t* bytes, size_t size);
  // Header (magic "SACOOUTM", version), metadata, then every booster in `format`.
  std::vector<uint8_t> save(xgb::Format format = xgb::Format::kUbjson) const;

  uint64_t cols() const { return cols_; }
  size_t next_count() const { return next_from_.size(); }
  const std::vector<int32_t>& next_from() const { return next_from_; }
  const std::vector<int32_t>& zero_cost_columns() const { return zero_cost_; }
  bool has_reward() const { return heads_[kPReward].present; }
  bool has_cost() const { return heads_[kPCost].present; }
  const std::vector<OutcomeHead>& heads() const { return heads_; }
  const std::vector<std::string>& names() const { return names_; }
  const std::string& meta() const { return meta_; }

  // x [n, p]. Each output [n] may be null (skipped); the reward outputs need has_reward(),
  // the cost outputs has_cost(). Rows marked by zero_cost_columns() get p_cost 0.
  void predict(const float* x, uint64_t n, float* p_reward, float* e_reward, float* p_cost, float* e_cost, unsigned threads) const;
  // p_cost[r] = 0 for each row r of x [n, stride] that zero_cost_columns() mark (all of them 1:
  // a control that never cost anything in the log costs nothing). predict() applies it; so do
  // the compiled-tree paths (the simulator, the scored policy).
  void zero_free_costs(const float* x, uint64_t n, uint64_t stride, float* p_cost) const;
  // E[r | x] and E[c | x], [n] each (either may be null).
  void expected(const float* x, uint64_t n, float* out_reward, float* out_cost, unsigned threads) const;
  // The expected next value of each dynamic feature given the round's outcome: out [n, k].
  void predict_next(const float* x, const float* reward, const float* cost, uint64_t n, float* out, unsigned threads) const;
  // Total gain of each input column per head: [heads][p] (p + 2 for next heads: reward, cost).
  std::vector<std::vector<double>> importance() const;

 private:
  uint64_t cols_ = 0;
  std::vector<int32_t> next_from_;
  std::vector<int32_t> zero_cost_;
  std::vector<std::string> names_;
  std::string meta_;
  std::vector<OutcomeHead> heads_;
};

// Outcome models handed to JavaScript by id (> 0), one registry per process, shared
// read-only by every thread and worker_thread (native/registry.h).
int64_t outcome_add(std::unique_ptr<OutcomeModel> model);
// nullptr when the id is unknown or was removed; holders keep the model alive.
std::shared_ptr<const OutcomeModel> outcome_get(int64_t id);
bool outcome_remove(int64_t id);
size_t outcome_count();

}  // namespace saco
