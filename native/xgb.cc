#include "xgb.h"

#include <xgboost/c_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace saco::xgb {

void check(int rc, const char* call) {
  if (rc == 0) return;
  const char* last = XGBGetLastError();
  std::string message = last != nullptr && *last != '\0' ? last : "failed";
  // XGBoost appends its stack trace; the first line is the message.
  const size_t trace = message.find("\nStack trace");
  if (trace != std::string::npos) message.resize(trace);
  throw std::runtime_error(std::string("xgboost ") + call + ": " + message);
}

std::string version() {
  int major = 0, minor = 0, patch = 0;
  XGBoostVersion(&major, &minor, &patch);
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

namespace {

// Shortest decimal text that reads back as the same double (XGBoost parses parameters as text).
std::string exact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// The validation metric of XGBoosterEvalOneIter's "[3]\tvalid-logloss:0.48" (the last value).
double parse_metric(const char* text) {
  const char* colon = nullptr;
  for (const char* c = text; *c != '\0'; ++c) {
    if (*c == ':') colon = c;
  }
  if (colon == nullptr) throw std::runtime_error(std::string("xgboost: cannot read the evaluation \"") + text + "\"");
  return std::strtod(colon + 1, nullptr);
}

// A __array_interface__ of a row-major float32 matrix, for in-place prediction.
std::string array_interface(const float* data, uint64_t rows, uint64_t cols) {
  return "{\"data\": [" + std::to_string(reinterpret_cast<uintptr_t>(data)) + ", true], \"shape\": [" + std::to_string(rows) + ", " +
         std::to_string(cols) + "], \"typestr\": \"<f4\", \"version\": 3}";
}

const char* predict_config(bool margin) {
  return margin ? "{\"type\": 1, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, \"strict_shape\": false, \"cache_id\": 0, \"missing\": NaN}"
                : "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, \"strict_shape\": false, \"cache_id\": 0, \"missing\": NaN}";
}

void copy_predictions(const float* result, const bst_ulong* shape, bst_ulong dim, uint64_t rows, float* out) {
  bst_ulong total = 1;
  for (bst_ulong k = 0; k < dim; ++k) total *= shape[k];
  if (total != rows) throw std::runtime_error("xgboost predict: " + std::to_string(total) + " values for " + std::to_string(rows) + " rows");
  for (uint64_t i = 0; i < rows; ++i) out[i] = result[i];
}

}  // namespace

DMatrix::DMatrix(const float* data, uint64_t rows, uint64_t cols, int threads) : rows_(rows), cols_(cols) {
  DMatrixHandle h = nullptr;
  check(XGDMatrixCreateFromMat_omp(data, rows, cols, std::numeric_limits<float>::quiet_NaN(), &h, threads), "XGDMatrixCreateFromMat_omp");
  handle_ = h;
}

DMatrix::~DMatrix() {
  if (handle_ != nullptr) XGDMatrixFree(handle_);
}

DMatrix& DMatrix::operator=(DMatrix&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) XGDMatrixFree(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
    rows_ = other.rows_;
    cols_ = other.cols_;
  }
  return *this;
}

void DMatrix::set_labels(const float* labels, uint64_t n) {
  if (n != rows_) throw std::invalid_argument("labels: " + std::to_string(n) + " for " + std::to_string(rows_) + " rows");
  check(XGDMatrixSetFloatInfo(handle_, "label", labels, n), "XGDMatrixSetFloatInfo(label)");
}

void DMatrix::set_weights(const float* weights, uint64_t n) {
  if (n != rows_) throw std::invalid_argument("weights: " + std::to_string(n) + " for " + std::to_string(rows_) + " rows");
  check(XGDMatrixSetFloatInfo(handle_, "weight", weights, n), "XGDMatrixSetFloatInfo(weight)");
}

Booster::~Booster() {
  if (handle_ != nullptr) XGBoosterFree(handle_);
}

Booster& Booster::operator=(Booster&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) XGBoosterFree(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

Booster Booster::train(const BoosterParams& params, const DMatrix& train, const DMatrix* valid, int rounds, int early_stopping,
                       TrainReport* report, double tolerance) {
  if (rounds < 1) throw std::invalid_argument("rounds must be >= 1");
  if (params.threads < 1) throw std::invalid_argument("threads must be >= 1 (a fixed count keeps results reproducible)");
  const bool binary = params.objective == "binary:logistic";
  if (!binary && params.objective != "reg:squarederror") throw std::invalid_argument("objective must be binary:logistic or reg:squarederror");
  DMatrixHandle cache[2] = {train.handle(), valid != nullptr ? valid->handle() : nullptr};
  BoosterHandle h = nullptr;
  check(XGBoosterCreate(cache, valid != nullptr ? 2 : 1, &h), "XGBoosterCreate");
  Booster booster(h);
  const std::string metric = binary ? "logloss" : "rmse";
  booster.set_param("verbosity", "0");
  booster.set_param("booster", "gbtree");
  booster.set_param("tree_method", "hist");
  booster.set_param("objective", params.objective);
  booster.set_param("eval_metric", metric);
  booster.set_param("max_depth", std::to_string(params.max_depth));
  booster.set_param("eta", exact(params.eta));
  booster.set_param("subsample", exact(params.subsample));
  booster.set_param("colsample_bytree", exact(params.colsample_bytree));
  booster.set_param("min_child_weight", exact(params.min_child_weight));
  booster.set_param("lambda", exact(params.lambda));
  booster.set_param("max_bin", std::to_string(params.max_bin));
  booster.set_param("base_score", exact(params.base_score));
  booster.set_param("seed", std::to_string(params.seed));
  booster.set_param("nthread", std::to_string(params.threads));

  const bool stopping = valid != nullptr && early_stopping > 0;
  if (!(tolerance >= 0)) throw std::invalid_argument("tolerance must be >= 0");
  double best = std::numeric_limits<double>::infinity(), last = std::numeric_limits<double>::quiet_NaN(), first = 0;
  int best_round = -1, run = 0;
  for (int iter = 0; iter < rounds; ++iter) {
    check(XGBoosterUpdateOneIter(h, iter, train.handle()), "XGBoosterUpdateOneIter");
    run = iter + 1;
    if (valid == nullptr) continue;
    DMatrixHandle eval[1] = {valid->handle()};
    const char* names[1] = {"valid"};
    const char* text = nullptr;
    check(XGBoosterEvalOneIter(h, iter, eval, names, 1, &text), "XGBoosterEvalOneIter");
    last = parse_metric(text);
    if (iter == 0) first = last;
    if (iter == 0 || last < best - tolerance * (first - best)) {
      best = last;
      best_round = iter;
    } else if (stopping && iter - best_round >= early_stopping) {
      break;
    }
  }
  int kept = run;
  if (stopping && best_round + 1 < run) {
    BoosterHandle sliced = nullptr;
    check(XGBoosterSlice(h, 0, best_round + 1, 1, &sliced), "XGBoosterSlice");
    booster = Booster(sliced);
    booster.set_param("verbosity", "0");
    booster.set_param("nthread", std::to_string(params.threads));
    kept = best_round + 1;
  }
  if (report != nullptr) {
    report->rounds = kept;
    report->rounds_run = run;
    report->metric = metric;
    report->valid_metric = stopping ? best : last;
  }
  return booster;
}

Booster Booster::load(const uint8_t* bytes, size_t size) {
  BoosterHandle h = nullptr;
  check(XGBoosterCreate(nullptr, 0, &h), "XGBoosterCreate");
  Booster booster(h);
  check(XGBoosterLoadModelFromBuffer(h, bytes, size), "XGBoosterLoadModelFromBuffer");
  booster.set_param("verbosity", "0");
  return booster;
}

int Booster::rounds() const {
  if (handle_ == nullptr) return 0;
  int out = 0;
  check(XGBoosterBoostedRounds(handle_, &out), "XGBoosterBoostedRounds");
  return out;
}

uint64_t Booster::features() const {
  if (handle_ == nullptr) return 0;
  bst_ulong out = 0;
  check(XGBoosterGetNumFeature(handle_, &out), "XGBoosterGetNumFeature");
  return out;
}

void Booster::set_param(const char* name, const std::string& value) {
  if (handle_ == nullptr) throw std::logic_error("xgboost: set_param on an empty booster");
  check(XGBoosterSetParam(handle_, name, value.c_str()), "XGBoosterSetParam");
}

void Booster::predict(const float* data, uint64_t rows, uint64_t cols, bool margin, float* out) const {
  if (handle_ == nullptr) throw std::logic_error("xgboost: predict with an empty booster");
  if (rows == 0) return;
  const std::string values = array_interface(data, rows, cols);
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* result = nullptr;
  check(XGBoosterPredictFromDense(handle_, values.c_str(), predict_config(margin), nullptr, &shape, &dim, &result), "XGBoosterPredictFromDense");
  copy_predictions(result, shape, dim, rows, out);
}

void Booster::predict(const DMatrix& m, bool margin, float* out) const {
  if (handle_ == nullptr) throw std::logic_error("xgboost: predict with an empty booster");
  if (m.rows() == 0) return;
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* result = nullptr;
  check(XGBoosterPredictFromDMatrix(handle_, m.handle(), predict_config(margin), &shape, &dim, &result), "XGBoosterPredictFromDMatrix");
  copy_predictions(result, shape, dim, m.rows(), out);
}

std::vector<uint8_t> Booster::save(Format format) const {
  if (handle_ == nullptr) throw std::logic_error("xgboost: save of an empty booster");
  bst_ulong len = 0;
  const char* data = nullptr;
  check(XGBoosterSaveModelToBuffer(handle_, format == Format::kJson ? "{\"format\": \"json\"}" : "{\"format\": \"ubj\"}", &len, &data),
        "XGBoosterSaveModelToBuffer");
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  return std::vector<uint8_t>(p, p + len);
}

std::vector<double> Booster::total_gain() const {
  const uint64_t p = features();
  std::vector<double> gain(p, 0.0);
  if (handle_ == nullptr || rounds() == 0) return gain;
  bst_ulong n = 0, dim = 0;
  const char** names = nullptr;
  const bst_ulong* shape = nullptr;
  const float* scores = nullptr;
  check(XGBoosterFeatureScore(handle_, "{\"importance_type\": \"total_gain\"}", &n, &names, &dim, &shape, &scores), "XGBoosterFeatureScore");
  // Unnamed features are reported as "f<index>"; features no split uses are left out.
  for (bst_ulong k = 0; k < n; ++k) {
    const char* name = names[k];
    if (name == nullptr || name[0] != 'f') continue;
    char* end = nullptr;
    const unsigned long j = std::strtoul(name + 1, &end, 10);
    if (end != nullptr && *end == '\0' && j < p) gain[j] = scores[k];
  }
  return gain;
}

}  // namespace saco::xgb
