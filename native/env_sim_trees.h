// The simulator's fast path for tree ensembles: an XGBoost booster's trees, read from its JSON
// model, as flat node arrays evaluated in plain loops. XGBoost's in-place prediction is the
// reference: it pays a proxy matrix, a configuration lock and per-call set-up on every call,
// which for the simulator's many small batches (a block's users of one action, one head) cost
// more than the trees themselves and kept two threads from being faster than one. The
// simulator compiles every head once and checks it against XGBoost on sample rows when it is
// created (SimModel), so the two cannot drift apart silently.
//
// Semantics, as XGBoost 1.7's CPU predictor: a row goes left when x[f] < threshold (float
// compare), the default side when x[f] is NaN; the margin starts at the base score (its logit
// for binary:logistic) and adds each tree's leaf in tree order in float; binary:logistic
// outputs 1 / (1 + exp(-margin)).
//
// Letters: n rows, p columns (row stride).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "outcome.h"
#include "xgb.h"

namespace saco {

class CompiledTrees {
 public:
  CompiledTrees() = default;
  // The trees of `booster` (throws std::invalid_argument on a model it cannot read: another
  // booster than gbtree, multi-output, categorical splits).
  static CompiledTrees compile(const xgb::Booster& booster);
  // A head without trees: every row gets `value`.
  static CompiledTrees constant(float value);

  // out[n] for rows x [n, p] (row stride p >= the features the trees read).
  void predict(const float* x, uint64_t n, uint64_t p, float* out) const;
  size_t trees() const { return roots_.size(); }
  // The largest column a split reads; -1 without splits.
  int32_t max_feature() const { return max_feature_; }

 private:
  // Breadth-first per tree, siblings adjacent (the right child is left + 1).
  struct Node {
    int32_t feature;  // -1: a leaf
    float value;      // split threshold, or the leaf's value
    int32_t left;     // the left child (absolute index); the right one follows it
  };
  std::vector<Node> nodes_;
  std::vector<uint8_t> default_left_;
  std::vector<int32_t> roots_;
  float base_margin_ = 0;
  bool logistic_ = false;
  bool constant_ = false;
  float value_ = 0;
  int32_t max_feature_ = -1;
};

// An outcome model's head compiled for rows of `cols` columns (a constant head: its value);
// a head that splits on a column beyond them is std::invalid_argument, `who` naming the model.
CompiledTrees compile_outcome_head(const OutcomeHead& head, int64_t cols, const std::string& who);

}  // namespace saco
