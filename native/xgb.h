// A small RAII wrapper over XGBoost's C API (Debian libxgboost-dev, 1.7): dense matrices,
// boosters trained for N rounds with optional early stopping, predictions into caller
// buffers, and models as bytes. Every call's return code is checked; a failure is a
// std::runtime_error carrying XGBGetLastError().
//
// Determinism: every booster is trained with an explicit seed and nthread. XGBoost 1.7.4's
// "hist" gave bit-identical trees with 1 and 2 threads in our checks (subsample 1 and 0.8),
// but XGBoost does not promise it, and its OpenMP threads spin-wait on a busy machine (7x
// slower with 2 threads on 2 loaded cores). So the outcome model trains each booster with
// nthread 1 and runs independent boosters on its own threads instead (native/outcome.h).
//
// Letters: n rows, p columns (features). Matrices are row-major float32; NaN means missing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace saco::xgb {

// Throws std::runtime_error("xgboost <call>: <XGBGetLastError()>") when rc != 0.
void check(int rc, const char* call);

// The library's version, e.g. "1.7.4".
std::string version();

// A DMatrix: XGBoost's copy of a dense [n, p] matrix (the caller's buffer may go after the
// constructor returns), with labels and optional weights.
class DMatrix {
 public:
  DMatrix(const float* data, uint64_t rows, uint64_t cols, int threads);
  ~DMatrix();
  DMatrix(DMatrix&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)), rows_(other.rows_), cols_(other.cols_) {}
  DMatrix& operator=(DMatrix&& other) noexcept;
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;

  // labels [n]; weights [n] (>= 0)
  void set_labels(const float* labels, uint64_t n);
  void set_weights(const float* weights, uint64_t n);

  void* handle() const { return handle_; }
  uint64_t rows() const { return rows_; }
  uint64_t cols() const { return cols_; }

 private:
  void* handle_ = nullptr;
  uint64_t rows_ = 0, cols_ = 0;
};

struct BoosterParams {
  std::string objective = "reg:squarederror";  // or "binary:logistic"
  int max_depth = 6;
  double eta = 0.1;
  double subsample = 1.0;
  double colsample_bytree = 1.0;
  double min_child_weight = 1.0;
  double lambda = 1.0;  // L2 on leaf weights
  double base_score = 0.5;  // where the trees start: a probability for binary:logistic, else a value
  int max_bin = 256;
  uint64_t seed = 0;
  int threads = 1;  // XGBoost's nthread for training and prediction (> 0)
};

// What training did: rounds kept (the best one with early stopping), and the validation
// metric (logloss or rmse, the objective's default) of the kept model; NaN without validation.
struct TrainReport {
  int rounds = 0;
  int rounds_run = 0;
  double valid_metric = 0;
  std::string metric;
};

enum class Format { kUbjson, kJson };

class Booster {
 public:
  Booster() = default;  // empty: holds no model
  ~Booster();
  Booster(Booster&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Booster& operator=(Booster&& other) noexcept;
  Booster(const Booster&) = delete;
  Booster& operator=(const Booster&) = delete;

  // Boosts up to `rounds` trees on `train`. With `valid` and early_stopping > 0, stops when
  // the validation metric has not improved for early_stopping rounds and keeps the best
  // rounds only. An improvement counts when it beats the best by more than `tolerance`
  // times the improvement made since the first tree (0: any improvement), so a head stops
  // once its last trees add next to nothing to what the earlier ones gained: a nearly exact
  // head (a deterministic transition) stops instead of polishing the last digits, whatever
  // the metric's scale.
  static Booster train(const BoosterParams& params, const DMatrix& train, const DMatrix* valid, int rounds, int early_stopping,
                       TrainReport* report, double tolerance = 0);
  // A model saved by save() (either format).
  static Booster load(const uint8_t* bytes, size_t size);

  bool empty() const { return handle_ == nullptr; }
  int rounds() const;
  uint64_t features() const;
  // Sets a parameter, e.g. "nthread" for later predictions. Not safe while other threads
  // predict with this booster: call it before sharing.
  void set_param(const char* name, const std::string& value);

  // Predictions for `rows` rows of a dense [rows, cols] matrix into out[rows]: the margin
  // (log-odds for binary:logistic) or the value. Safe to call from several threads at once
  // (XGBoost >= 1.4 predicts with per-thread state); uses the booster's nthread.
  void predict(const float* data, uint64_t rows, uint64_t cols, bool margin, float* out) const;
  // The same for a DMatrix.
  void predict(const DMatrix& m, bool margin, float* out) const;

  std::vector<uint8_t> save(Format format) const;

  // Total gain of each feature over all trees, [features]; 0 for unused features.
  std::vector<double> total_gain() const;

 private:
  explicit Booster(void* handle) : handle_(handle) {}
  void* handle_ = nullptr;
};

}  // namespace saco::xgb
