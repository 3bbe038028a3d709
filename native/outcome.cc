#include "outcome.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <ctime>

#include "pool.h"
#include "registry.h"

namespace saco {

namespace {

constexpr char kMagic[8] = {'S', 'A', 'C', 'O', 'O', 'U', 'T', 'M'};
constexpr uint32_t kVersion = 1;
// Rows per prediction chunk: below this, a thread costs more than it saves.
constexpr uint64_t kPredictChunk = 8192;

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v) {
    if (!std::isfinite(x)) return false;
  }
  return true;
}

void validate(const OutcomeSpec& s) {
  require(s.rows >= 1 && s.cols >= 1, "outcome fit: needs at least one row and one column");
  require(s.features.size() == s.rows * s.cols, "outcome fit: features has " + std::to_string(s.features.size()) + " values, rows * cols = " + std::to_string(s.rows * s.cols));
  require(all_finite(s.features), "outcome fit: features must be finite");
  require(s.reward.size() == s.rows && s.cost.size() == s.rows, "outcome fit: reward and cost need one value per row");
  require(all_finite(s.reward) && all_finite(s.cost), "outcome fit: reward and cost must be finite");
  require(s.weights.empty() || s.weights.size() == s.rows, "outcome fit: weights need one value per row");
  for (float w : s.weights) require(std::isfinite(w) && w >= 0, "outcome fit: weights must be finite and >= 0");
  require(s.validation.empty() || s.validation.size() == s.rows, "outcome fit: validation needs one flag per row");
  require(s.names.empty() || s.names.size() == s.cols, "outcome fit: names needs one name per column");
  const size_t k = s.next_from.size();
  for (int32_t j : s.next_from) require(j >= 0 && static_cast<uint64_t>(j) < s.cols, "outcome fit: nextFrom holds a column outside [0, cols)");
  for (int32_t j : s.zero_cost_columns) require(j >= 0 && static_cast<uint64_t>(j) < s.cols, "outcome fit: zeroCostColumns holds a column outside [0, cols)");
  require(s.next.size() == s.rows * k, "outcome fit: next needs rows * nextFrom.length values");
  for (uint64_t i = 0; i < s.rows && k > 0; ++i) {
    const bool has = std::isfinite(s.next[i * k]);
    for (size_t j = 0; j < k; ++j) {
      const float v = s.next[i * k + j];
      require(has ? std::isfinite(v) : std::isnan(v), "outcome fit: next row " + std::to_string(i) + " must be all finite or all NaN (no next round)");
    }
  }
  require(s.fit_reward || s.fit_cost || k > 0, "outcome fit: no head to fit");
  const OutcomeParams& p = s.params;
  require(p.rounds >= 1 && p.rounds <= 100000, "outcome fit: rounds must be in [1, 100000]");
  require(p.depth >= 1 && p.depth <= 20, "outcome fit: depth must be in [1, 20]");
  require(p.eta > 0 && p.eta <= 1, "outcome fit: eta must be in (0, 1]");
  require(p.subsample > 0 && p.subsample <= 1, "outcome fit: subsample must be in (0, 1]");
  require(p.min_child_weight >= 0 && std::isfinite(p.min_child_weight), "outcome fit: minChildWeight must be >= 0");
  require(p.lambda >= 0 && std::isfinite(p.lambda), "outcome fit: lambda must be >= 0");
  require(p.max_bin >= 2 && p.max_bin <= 65536, "outcome fit: maxBin must be in [2, 65536]");
  require(p.early_stopping >= 0, "outcome fit: earlyStopping must be >= 0");
  require(p.tolerance >= 0 && p.tolerance < 1, "outcome fit: tolerance must be in [0, 1)");
}

// One group of heads trained on the same rows and columns (so on one DMatrix).
struct Group {
  std::vector<int> heads;
  std::vector<uint64_t> train, valid;  // row indices of the spec
  bool with_outcome = false;           // columns [x | r | c] (transition heads)
};

// The label of `head` for spec row i.
float label(const OutcomeSpec& s, int head, uint64_t i) {
  switch (head) {
    case OutcomeModel::kPReward: return s.reward[i] != 0 ? 1.0f : 0.0f;
    case OutcomeModel::kEReward: return s.reward[i];
    case OutcomeModel::kPCost: return s.cost[i] != 0 ? 1.0f : 0.0f;
    case OutcomeModel::kECost: return s.cost[i];
    default: {
      const size_t k = s.next_from.size();
      const size_t j = static_cast<size_t>(head - OutcomeModel::kFirstNext);
      return s.next[i * k + j] - s.features[i * s.cols + static_cast<uint64_t>(s.next_from[j])];
    }
  }
}

bool binary_head(int head) { return head == OutcomeModel::kPReward || head == OutcomeModel::kPCost; }

// Rows of the spec as a dense matrix: x, or [x | r | c].
std::vector<float> gather(const OutcomeSpec& s, const std::vector<uint64_t>& rows, bool with_outcome) {
  const uint64_t p = s.cols, w = p + (with_outcome ? 2 : 0);
  std::vector<float> out(rows.size() * w);
  for (size_t r = 0; r < rows.size(); ++r) {
    const uint64_t i = rows[r];
    std::memcpy(&out[r * w], &s.features[i * p], p * sizeof(float));
    if (with_outcome) {
      out[r * w + p] = s.reward[i];
      out[r * w + p + 1] = s.cost[i];
    }
  }
  return out;
}

double weight(const OutcomeSpec& s, uint64_t i) { return s.weights.empty() ? 1.0 : s.weights[i]; }

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void train_group(const OutcomeSpec& s, const Group& g, int index, std::vector<OutcomeHead>& heads) {
  const OutcomeParams& p = s.params;
  double clock = thread_cpu_seconds();
  const uint64_t w = s.cols + (g.with_outcome ? 2 : 0);
  std::unique_ptr<xgb::DMatrix> train, valid;
  if (!g.train.empty()) {
    std::vector<float> m = gather(s, g.train, g.with_outcome);
    train = std::make_unique<xgb::DMatrix>(m.data(), g.train.size(), w, 1);
  }
  if (!g.valid.empty()) {
    std::vector<float> m = gather(s, g.valid, g.with_outcome);
    valid = std::make_unique<xgb::DMatrix>(m.data(), g.valid.size(), w, 1);
  }
  auto weights_of = [&](const std::vector<uint64_t>& rows) {
    std::vector<float> out(rows.size());
    for (size_t r = 0; r < rows.size(); ++r) out[r] = static_cast<float>(weight(s, rows[r]));
    return out;
  };
  if (!s.weights.empty()) {
    if (train) train->set_weights(weights_of(g.train).data(), g.train.size());
    if (valid) valid->set_weights(weights_of(g.valid).data(), g.valid.size());
  }
  for (int head : g.heads) {
    OutcomeHead& h = heads[static_cast<size_t>(head)];
    h.group = index;
    h.train_rows = g.train.size();
    h.valid_rows = g.valid.size();
    std::vector<float> y_train(g.train.size()), y_valid(g.valid.size());
    double sum_w = 0, sum_wy = 0;
    for (size_t r = 0; r < g.train.size(); ++r) {
      y_train[r] = label(s, head, g.train[r]);
      sum_w += weight(s, g.train[r]);
      sum_wy += weight(s, g.train[r]) * y_train[r];
    }
    for (size_t r = 0; r < g.valid.size(); ++r) y_valid[r] = label(s, head, g.valid[r]);
    const double mean = sum_w > 0 ? sum_wy / sum_w : 0.0;
    h.value = mean;
    h.metric = binary_head(head) ? "logloss" : "rmse";
    h.valid_metric = std::numeric_limits<double>::quiet_NaN();
    // Nothing to learn: no training rows, no weight, or (binary) one class only.
    if (g.train.empty() || sum_w <= 0 || (binary_head(head) && (mean <= 0 || mean >= 1))) {
      h.constant = true;
      const double now = thread_cpu_seconds();
      h.cpu_seconds = now - clock;
      clock = now;
      continue;
    }
    train->set_labels(y_train.data(), y_train.size());
    if (valid) valid->set_labels(y_valid.data(), y_valid.size());
    xgb::BoosterParams bp;
    bp.objective = binary_head(head) ? "binary:logistic" : "reg:squarederror";
    bp.max_depth = p.depth;
    bp.eta = p.eta;
    bp.subsample = p.subsample;
    bp.min_child_weight = p.min_child_weight;
    bp.lambda = p.lambda;
    bp.max_bin = p.max_bin;
    bp.seed = p.seed + static_cast<uint64_t>(head);
    bp.threads = 1;
    bp.base_score = binary_head(head) ? std::min(std::max(mean, 1e-6), 1 - 1e-6) : mean;
    xgb::TrainReport report;
    h.booster = xgb::Booster::train(bp, *train, valid.get(), p.rounds, p.early_stopping, &report, p.tolerance);
    h.rounds = report.rounds;
    h.rounds_run = report.rounds_run;
    h.valid_metric = report.valid_metric;
    if (!binary_head(head)) {
      // Residual spread on the validation rows when there are some, else on the training rows.
      const bool on_valid = valid != nullptr;
      const std::vector<uint64_t>& rows = on_valid ? g.valid : g.train;
      const std::vector<float>& y = on_valid ? y_valid : y_train;
      std::vector<float> pred(rows.size());
      h.booster.predict(on_valid ? *valid : *train, false, pred.data());
      double sw = 0, swr = 0;
      for (size_t r = 0; r < rows.size(); ++r) {
        const double e = static_cast<double>(y[r]) - pred[r];
        sw += weight(s, rows[r]);
        swr += weight(s, rows[r]) * e * e;
      }
      h.residual_sd = sw > 0 ? std::sqrt(swr / sw) : 0.0;
    }
    const double now = thread_cpu_seconds();
    h.cpu_seconds = now - clock;
    clock = now;
  }
}

// Runs jobs [0, n) on up to `threads` threads, each job on one thread; rethrows the first failure.
void run_jobs(size_t n, unsigned threads, const std::function<void(size_t)>& job) {
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto worker = [&] {
    for (size_t j = next++; j < n; j = next++) {
      try {
        job(j);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
    }
  };
  const size_t workers = std::min<size_t>(std::max(1u, threads), n);
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; ++w) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

// Byte writer and bounds-checked reader of the saved format (little-endian, as on x86 and ARM).
class Writer {
 public:
  template <typename T>
  void put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out_.insert(out_.end(), p, p + sizeof(T));
  }
  void bytes(const uint8_t* p, size_t n) {
    put<uint64_t>(n);
    out_.insert(out_.end(), p, p + n);
  }
  void text(const std::string& s) { bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }
  void raw(const char* p, size_t n) { out_.insert(out_.end(), p, p + n); }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_ + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::pair<const uint8_t*, size_t> bytes() {
    const uint64_t n = get<uint64_t>();
    need(n);
    const uint8_t* p = p_ + at_;
    at_ += n;
    return {p, static_cast<size_t>(n)};
  }
  std::string text() {
    auto [p, n] = bytes();
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  bool done() const { return at_ == n_; }

 private:
  void need(uint64_t k) const {
    if (k > n_ - at_) throw std::invalid_argument("outcome model bytes: truncated at byte " + std::to_string(at_) + " of " + std::to_string(n_));
  }
  const uint8_t* p_;
  size_t n_, at_ = 0;
};

unsigned predict_workers(uint64_t n, unsigned threads) {
  const uint64_t chunks = (n + kPredictChunk - 1) / kPredictChunk;
  return static_cast<unsigned>(std::max<uint64_t>(1, std::min<uint64_t>(resolve_threads(threads), chunks)));
}

}  // namespace

std::unique_ptr<OutcomeModel> OutcomeModel::fit(const OutcomeSpec& s) {
  validate(s);
  auto model = std::make_unique<OutcomeModel>();
  model->cols_ = s.cols;
  model->next_from_ = s.next_from;
  model->zero_cost_ = s.zero_cost_columns;
  model->names_ = s.names;
  model->meta_ = s.meta;
  const size_t k = s.next_from.size();
  model->heads_.resize(kFirstNext + k);
  const char* fixed[4] = {"pReward", "eReward", "pCost", "eCost"};
  for (size_t h = 0; h < model->heads_.size(); ++h) {
    model->heads_[h].name = h < 4 ? fixed[h] : "next:" + std::to_string(s.next_from[h - kFirstNext]);
  }
  auto is_valid = [&](uint64_t i) { return !s.validation.empty() && s.validation[i] != 0; };
  auto group_of = [&](auto keep, bool with_outcome) {
    Group g;
    g.with_outcome = with_outcome;
    for (uint64_t i = 0; i < s.rows; ++i) {
      if (keep(i)) (is_valid(i) ? g.valid : g.train).push_back(i);
    }
    return g;
  };
  // The two probability heads read the same rows but train apart: each is the largest job,
  // and on two threads they balance the rest (a second DMatrix costs less than the wait).
  std::vector<Group> groups;
  for (int head : {static_cast<int>(kPReward), static_cast<int>(kPCost)}) {
    if (head == kPReward ? !s.fit_reward : !s.fit_cost) continue;
    Group all = group_of([](uint64_t) { return true; }, false);
    all.heads.push_back(head);
    groups.push_back(std::move(all));
  }
  if (s.fit_reward) {
    Group g = group_of([&](uint64_t i) { return s.reward[i] != 0; }, false);
    g.heads.push_back(kEReward);
    groups.push_back(std::move(g));
  }
  if (s.fit_cost) {
    Group g = group_of([&](uint64_t i) { return s.cost[i] != 0; }, false);
    g.heads.push_back(kECost);
    groups.push_back(std::move(g));
  }
  if (k > 0) {
    Group g = group_of([&](uint64_t i) { return std::isfinite(s.next[i * k]); }, true);
    for (size_t j = 0; j < k; ++j) g.heads.push_back(kFirstNext + static_cast<int>(j));
    groups.push_back(std::move(g));
  }
  for (const Group& g : groups) {
    for (int h : g.heads) model->heads_[static_cast<size_t>(h)].present = true;
  }
  // Longest first (the probability heads take the most trees), so no thread idles at the end.
  std::stable_sort(groups.begin(), groups.end(), [](const Group& a, const Group& b) {
    const bool pa = binary_head(a.heads[0]), pb = binary_head(b.heads[0]);
    if (pa != pb) return pa;
    return (a.train.size() + a.valid.size()) * a.heads.size() > (b.train.size() + b.valid.size()) * b.heads.size();
  });
  run_jobs(groups.size(), resolve_threads(s.params.threads), [&](size_t j) { train_group(s, groups[j], static_cast<int>(j), model->heads_); });
  return model;
}

void OutcomeModel::zero_free_costs(const float* x, uint64_t n, uint64_t stride, float* p_cost) const {
  if (zero_cost_.empty()) return;
  for (uint64_t r = 0; r < n; ++r) {
    bool free = true;
    for (int32_t j : zero_cost_) free = free && x[r * stride + static_cast<uint64_t>(j)] == 1.0f;
    if (free) p_cost[r] = 0.0f;
  }
}

void OutcomeModel::predict(const float* x, uint64_t n, float* p_reward, float* e_reward, float* p_cost, float* e_cost, unsigned threads) const {
  if ((p_reward != nullptr || e_reward != nullptr) && !has_reward()) throw std::invalid_argument("outcome model: fitted without the reward heads");
  if ((p_cost != nullptr || e_cost != nullptr) && !has_cost()) throw std::invalid_argument("outcome model: fitted without the cost heads");
  float* outs[4] = {p_reward, e_reward, p_cost, e_cost};
  parallel_for(n, predict_workers(n, threads), [&](size_t begin, size_t end) {
    const float* xs = x + begin * cols_;
    for (int h = 0; h < 4; ++h) {
      if (outs[h] == nullptr) continue;
      const OutcomeHead& head = heads_[static_cast<size_t>(h)];
      float* out = outs[h] + begin;
      if (head.constant) {
        std::fill(out, out + (end - begin), static_cast<float>(head.value));
      } else {
        head.booster.predict(xs, end - begin, cols_, false, out);
      }
    }
    if (p_cost != nullptr) zero_free_costs(xs, end - begin, cols_, p_cost + begin);
  });
}

void OutcomeModel::expected(const float* x, uint64_t n, float* out_reward, float* out_cost, unsigned threads) const {
  std::vector<float> p(out_reward != nullptr || out_cost != nullptr ? n : 0);
  if (out_reward != nullptr) {
    predict(x, n, p.data(), out_reward, nullptr, nullptr, threads);
    for (uint64_t i = 0; i < n; ++i) out_reward[i] *= p[i];
  }
  if (out_cost != nullptr) {
    predict(x, n, nullptr, nullptr, p.data(), out_cost, threads);
    for (uint64_t i = 0; i < n; ++i) out_cost[i] *= p[i];
  }
}

void OutcomeModel::predict_next(const float* x, const float* reward, const float* cost, uint64_t n, float* out, unsigned threads) const {
  const size_t k = next_from_.size();
  if (k == 0) throw std::invalid_argument("outcome model: fitted without transition heads");
  const uint64_t w = cols_ + 2;
  parallel_for(n, predict_workers(n, threads), [&](size_t begin, size_t end) {
    const size_t m = end - begin;
    std::vector<float> rows(m * w), delta(m);
    for (size_t r = 0; r < m; ++r) {
      std::memcpy(&rows[r * w], x + (begin + r) * cols_, cols_ * sizeof(float));
      rows[r * w + cols_] = reward[begin + r];
      rows[r * w + cols_ + 1] = cost[begin + r];
    }
    for (size_t j = 0; j < k; ++j) {
      const OutcomeHead& head = heads_[kFirstNext + j];
      if (head.constant) {
        std::fill(delta.begin(), delta.end(), static_cast<float>(head.value));
      } else {
        head.booster.predict(rows.data(), m, w, false, delta.data());
      }
      const uint64_t from = static_cast<uint64_t>(next_from_[j]);
      for (size_t r = 0; r < m; ++r) out[(begin + r) * k + j] = x[(begin + r) * cols_ + from] + delta[r];
    }
  });
}

std::vector<std::vector<double>> OutcomeModel::importance() const {
  std::vector<std::vector<double>> out;
  for (size_t h = 0; h < heads_.size(); ++h) {
    const uint64_t w = cols_ + (h >= kFirstNext ? 2 : 0);
    std::vector<double> gain(w, 0.0);
    const OutcomeHead& head = heads_[h];
    if (head.present && !head.constant) {
      std::vector<double> g = head.booster.total_gain();
      for (size_t j = 0; j < g.size() && j < w; ++j) gain[j] = g[j];
    }
    out.push_back(std::move(gain));
  }
  return out;
}

std::vector<uint8_t> OutcomeModel::save(xgb::Format format) const {
  Writer w;
  w.raw(kMagic, sizeof kMagic);
  w.put<uint32_t>(kVersion);
  w.put<uint64_t>(cols_);
  w.put<uint32_t>(static_cast<uint32_t>(next_from_.size()));
  for (int32_t j : next_from_) w.put<int32_t>(j);
  w.put<uint32_t>(static_cast<uint32_t>(zero_cost_.size()));
  for (int32_t j : zero_cost_) w.put<int32_t>(j);
  w.put<uint32_t>(static_cast<uint32_t>(names_.size()));
  for (const std::string& n : names_) w.text(n);
  w.text(meta_);
  w.put<uint32_t>(static_cast<uint32_t>(heads_.size()));
  for (const OutcomeHead& h : heads_) {
    w.text(h.name);
    w.put<uint8_t>(static_cast<uint8_t>((h.present ? 1 : 0) | (h.constant ? 2 : 0)));
    w.put<double>(h.value);
    w.put<double>(h.residual_sd);
    w.put<int32_t>(h.rounds);
    w.put<int32_t>(h.rounds_run);
    w.put<double>(h.valid_metric);
    w.text(h.metric);
    w.put<uint64_t>(h.train_rows);
    w.put<uint64_t>(h.valid_rows);
    if (h.present && !h.constant) {
      std::vector<uint8_t> b = h.booster.save(format);
      w.bytes(b.data(), b.size());
    } else {
      w.bytes(nullptr, 0);
    }
  }
  return w.take();
}

std::unique_ptr<OutcomeModel> OutcomeModel::load(const uint8_t* bytes, size_t size) {
  require(size >= sizeof kMagic && std::memcmp(bytes, kMagic, sizeof kMagic) == 0, "outcome model bytes: not a saco outcome model (bad magic)");
  Reader r(bytes + sizeof kMagic, size - sizeof kMagic);
  const uint32_t version = r.get<uint32_t>();
  require(version == kVersion, "outcome model bytes: format version " + std::to_string(version) + ", this build reads version " + std::to_string(kVersion));
  auto model = std::make_unique<OutcomeModel>();
  model->cols_ = r.get<uint64_t>();
  require(model->cols_ >= 1 && model->cols_ <= (1u << 20), "outcome model bytes: bad column count");
  const uint32_t k = r.get<uint32_t>();
  require(k <= model->cols_, "outcome model bytes: bad transition count");
  for (uint32_t j = 0; j < k; ++j) {
    const int32_t from = r.get<int32_t>();
    require(from >= 0 && static_cast<uint64_t>(from) < model->cols_, "outcome model bytes: bad transition column");
    model->next_from_.push_back(from);
  }
  const uint32_t free = r.get<uint32_t>();
  require(free <= model->cols_, "outcome model bytes: bad zero-cost column count");
  for (uint32_t j = 0; j < free; ++j) {
    const int32_t col = r.get<int32_t>();
    require(col >= 0 && static_cast<uint64_t>(col) < model->cols_, "outcome model bytes: bad zero-cost column");
    model->zero_cost_.push_back(col);
  }
  const uint32_t names = r.get<uint32_t>();
  require(names == 0 || names == model->cols_, "outcome model bytes: bad name count");
  for (uint32_t j = 0; j < names; ++j) model->names_.push_back(r.text());
  model->meta_ = r.text();
  const uint32_t heads = r.get<uint32_t>();
  require(heads == kFirstNext + k, "outcome model bytes: bad head count");
  model->heads_.resize(heads);
  for (uint32_t i = 0; i < heads; ++i) {
    OutcomeHead& h = model->heads_[i];
    h.name = r.text();
    const uint8_t flags = r.get<uint8_t>();
    h.present = (flags & 1) != 0;
    h.constant = (flags & 2) != 0;
    h.value = r.get<double>();
    h.residual_sd = r.get<double>();
    h.rounds = r.get<int32_t>();
    h.rounds_run = r.get<int32_t>();
    h.valid_metric = r.get<double>();
    h.metric = r.text();
    h.train_rows = r.get<uint64_t>();
    h.valid_rows = r.get<uint64_t>();
    auto [p, n] = r.bytes();
    if (h.present && !h.constant) {
      require(n > 0, "outcome model bytes: head " + h.name + " has no trees");
      h.booster = xgb::Booster::load(p, n);
      h.booster.set_param("nthread", "1");
      const uint64_t want = model->cols_ + (i >= kFirstNext ? 2 : 0);
      require(h.booster.features() == want, "outcome model bytes: head " + h.name + " reads " + std::to_string(h.booster.features()) + " columns, expected " + std::to_string(want));
    }
  }
  require(model->heads_[kPReward].present == model->heads_[kEReward].present && model->heads_[kPCost].present == model->heads_[kECost].present,
          "outcome model bytes: a probability head without its amount head");
  require(r.done(), "outcome model bytes: trailing bytes after the last head");
  return model;
}

namespace {

// Never destroyed: at process exit, freeing a booster after XGBoost's own statics are gone
// aborts ("free(): invalid pointer"), so models still registered then are left to the OS.
Registry<const OutcomeModel>& outcome_registry() {
  static auto* r = new Registry<const OutcomeModel>();
  return *r;
}

}  // namespace

int64_t outcome_add(std::unique_ptr<OutcomeModel> model) {
  if (!model) throw std::invalid_argument("outcome_add: no model");
  return outcome_registry().add(std::shared_ptr<const OutcomeModel>(std::move(model)));
}
std::shared_ptr<const OutcomeModel> outcome_get(int64_t id) { return outcome_registry().get(id); }
bool outcome_remove(int64_t id) { return outcome_registry().remove(id); }
size_t outcome_count() { return outcome_registry().size(); }

}  // namespace saco
