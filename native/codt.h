// CODT on the CPU: weights, the layer functions, a full-sequence forward (the reference the
// tests hold against ONNX Runtime) and an incremental decoder with a KV cache per user
// (what rollouts and decisions use). Both call the same layer functions.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "bf16.h"
#include "decision_cache.h"
#include "floats.h"
#include "layers.h"
#include "tensor.h"

namespace saco {

enum class TokenKind { kRtg = 0, kCtg = 1, kState = 2, kAction = 3 };

struct CodtConfig {
  int state_dim = 0;
  std::vector<int> action_sizes;
  int context = 0;  // rounds
  int d_model = 0;
  int layers = 0;
  int heads = 0;
  bool uses_rtg = true;
  bool uses_ctg = true;
  bool uses_lambda = true;

  int action_width() const;
  std::vector<TokenKind> token_kinds() const;  // per round, in sequence order
  int tokens_per_round() const { return static_cast<int>(token_kinds().size()); }
};

struct Normalization {
  std::vector<float> state_mean, state_std;
  float rtg_scale = 1, ctg_scale = 1, lambda_max = 1;
};

// Decision-time targets RTG*_0(λ), CTG*_0(λ) on a λ grid.
struct TargetTable {
  std::vector<double> lambdas, rtg, ctg;
  void at(double lambda, double& rtg_out, double& ctg_out) const;
};

// Pointers to every parameter, resolved once (no string lookups on the hot path). The same
// layout holds the weights (T = const float) and a trainer's gradients (T = float).
template <typename T>
struct LayerParams {
  T *ln1_g, *ln1_b, *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo, *ln2_g, *ln2_b, *w1, *b1, *w2, *b2;
};
template <typename T>
struct ModelParams {
  T *rtg_w = nullptr, *rtg_b = nullptr, *ctg_w = nullptr, *ctg_b = nullptr;
  T *state_w = nullptr, *state_b = nullptr, *action_w = nullptr, *action_b = nullptr, *time = nullptr;
  T *lambda_w = nullptr, *lambda_b = nullptr;
  T *embed_ln_g = nullptr, *embed_ln_b = nullptr, *lnf_g = nullptr, *lnf_b = nullptr, *head_w = nullptr, *head_b = nullptr;
  std::vector<LayerParams<T>> layers;
};
using LayerWeights = LayerParams<const float>;
using ResolvedWeights = ModelParams<const float>;
using Gradients = ModelParams<float>;

// One parameter of a config: its canonical name (src/model/config.ts), size and whether
// AdamW decays it (matrices except the time table).
struct ParamShape {
  std::string name;
  size_t size;
  bool decay;
};
std::vector<ParamShape> param_shapes(const CodtConfig& config);

// Resolves every pointer of a config through at(name) -> T*.
template <typename T, typename Lookup>
ModelParams<T> resolve_params(const CodtConfig& c, Lookup&& at) {
  ModelParams<T> w;
  if (c.uses_rtg) w.rtg_w = at("embed.rtg.w"), w.rtg_b = at("embed.rtg.b");
  if (c.uses_ctg) w.ctg_w = at("embed.ctg.w"), w.ctg_b = at("embed.ctg.b");
  if (c.uses_lambda) w.lambda_w = at("embed.lambda.w"), w.lambda_b = at("embed.lambda.b");
  w.state_w = at("embed.state.w"), w.state_b = at("embed.state.b");
  w.action_w = at("embed.action.w"), w.action_b = at("embed.action.b");
  w.time = at("embed.time");
  w.embed_ln_g = at("embed.ln.g"), w.embed_ln_b = at("embed.ln.b");
  w.lnf_g = at("ln_f.g"), w.lnf_b = at("ln_f.b");
  w.head_w = at("head.w"), w.head_b = at("head.b");
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    LayerParams<T> L;
    L.ln1_g = at(p + "ln1.g"), L.ln1_b = at(p + "ln1.b");
    L.wq = at(p + "attn.wq"), L.bq = at(p + "attn.bq");
    L.wk = at(p + "attn.wk"), L.bk = at(p + "attn.bk");
    L.wv = at(p + "attn.wv"), L.bv = at(p + "attn.bv");
    L.wo = at(p + "attn.wo"), L.bo = at(p + "attn.bo");
    L.ln2_g = at(p + "ln2.g"), L.ln2_b = at(p + "ln2.b");
    L.w1 = at(p + "mlp.w1"), L.b1 = at(p + "mlp.b1");
    L.w2 = at(p + "mlp.w2"), L.b2 = at(p + "mlp.b2");
    w.layers.push_back(L);
  }
  return w;
}

// Keys and values of the tokens before round 0's state token (the targets), by their values
// and λ: the same for every user who starts at them, in any block or call, so the decoder
// computes them once per (model, λ, targets) (CodtDecoder::append_prefix). Thread-safe; a
// copy of a model starts with an empty cache (its weights may then change).
class PrefixCache {
 public:
  struct Entry {
    std::vector<float> key;   // λ, then the targets
    std::vector<float> k, v;  // [layers, d, tokens] and [layers, tokens, d] (CodtDecoder::save_user)
  };
  PrefixCache() = default;
  PrefixCache(const PrefixCache&) {}
  PrefixCache& operator=(const PrefixCache&) { return *this; }
  // The entry of key[n], shared (never copied: a hit costs a lookup, not an allocation), or null.
  std::shared_ptr<const Entry> find(const float* key, size_t n) const;
  void put(std::shared_ptr<const Entry> entry);

 private:
  static constexpr size_t kEntries = 64;  // the latest, enough for a λ search and a few served λ
  mutable std::mutex mutex_;
  std::deque<std::shared_ptr<const Entry>> entries_;
};

// The decoder's arithmetic: fp32 (the default: what the tests hold against ONNX Runtime), or
// bf16 products (bf16.h: the layers' six matrices; embeddings, head, LayerNorms, attention and
// the KV caches stay fp32).
enum class Precision { kFp32, kBf16 };
// One layer's matrices rounded to bf16 (precision bf16).
struct Bf16Layer {
  Bf16Weight wq, wk, wv, wo, w1, w2;
};

// Read-only after validate_model: shared by every thread and worker_thread of the process.
struct CodtModel {
  CodtConfig config;
  Normalization norm;
  TargetTable targets;
  std::map<std::string, std::vector<float>> params;
  ResolvedWeights w;  // filled by validate_model
  Precision precision = Precision::kFp32;  // set before validate_model
  std::vector<Bf16Layer> bf16;             // filled by validate_model for precision bf16
  mutable PrefixCache prefix;
  mutable DecisionCache decisions;  // decision calls' sequences (codt_forward_incremental, keep_decisions)
  const float* p(const std::string& name) const;
};

// Throws std::invalid_argument when sizes are impossible or a parameter is missing/mis-sized;
// then resolves the weight pointers.
void validate_model(CodtModel& model);

// ---- embeddings (shared by the decoder and the full-sequence path) ----------------------
// The Linear of one token kind, in the weights or in a gradient of the same layout.
template <typename T>
T* kind_weight(const ModelParams<T>& w, TokenKind kind) {
  return kind == TokenKind::kRtg ? w.rtg_w : kind == TokenKind::kCtg ? w.ctg_w : kind == TokenKind::kState ? w.state_w : w.action_w;
}
template <typename T>
T* kind_bias(const ModelParams<T>& w, TokenKind kind) {
  return kind == TokenKind::kRtg ? w.rtg_b : kind == TokenKind::kCtg ? w.ctg_b : kind == TokenKind::kState ? w.state_b : w.action_b;
}
// Width of the input one token kind feeds its Linear: 1 (rtg/ctg), state_dim or K.
int embed_input_width(const CodtConfig& c, TokenKind kind);
// out[rows, D] = Linear_kind(input) (no time or λ yet). The input is rtg/ctg divided by their
// scale [rows, 1], z-normalised states [rows, state_dim] (both left in `scratch`, which the
// backward reads) or the one-hot action [rows, K] as given.
void embed_kind(const CodtModel& m, TokenKind kind, const float* values, int rows, float* out, Floats& scratch);
// out[D] += time[t] + Linear_λ(λ / λmax)
void add_time_and_lambda(const CodtModel& m, int t, float lambda, float* out);

// ---- full-sequence inputs (codt_sequence.h runs them) --------------------------------------
// Inputs of B users over T rounds (T <= context), raw as in the ONNX graph:
//   states [B, T, state_dim], rtg [B, T], ctg [B, T], actions_onehot [B, T, K], lambda [B]
struct SequenceBatch {
  int batch = 0, rounds = 0;
  const float* states = nullptr;
  const float* rtg = nullptr;
  const float* ctg = nullptr;
  const float* actions_onehot = nullptr;
  const float* lambda = nullptr;
};

// ---- incremental decoder -------------------------------------------------------------------
// Keeps K and V of every past token of up to `capacity` users; each call appends one token per user.
class CodtDecoder {
 public:
  // max_rounds: how many rounds will be appended (<= context; 0: the whole context).
  CodtDecoder(const CodtModel& model, int capacity, int max_rounds = 0);
  // The same decoder for another model or size, keeping its buffers (they only grow): what
  // a reused decoder costs instead of fresh caches and scratch. Forgets every token.
  void bind(const CodtModel& model, int capacity, int max_rounds = 0);
  // Bytes the caches of (capacity, max_rounds) take.
  static size_t cache_bytes(const CodtModel& model, int capacity, int max_rounds);
  // Forget every token; the next ones are for `batch` (<= capacity) users.
  void reset(int batch);
  void reset() { reset(batch_); }
  int batch() const { return batch_; }
  int position() const { return pos_; }
  // Appends one token of `kind` at round t for every user. `values` is, per user:
  // rtg/ctg: 1 raw value; state: state_dim raw values; action: K one-hot values.
  // lambda: per user raw λ. When kind is kState and logits != nullptr, writes [batch, K].
  // (Queuing a round's tokens to run as one product of 4 x batch rows measured no faster:
  // the row kernel's rate does not grow with the rows past a few tiles.)
  void append(TokenKind kind, int round, const float* values, const float* lambda, float* logits);
  // True while every token appended so far was the same for every user (append_shared).
  bool prefix_shared() const { return shared_ == pos_; }
  // Appends a token that is the same for every user (`values` one user's row, one λ) after
  // a prefix that is too (prefix_shared()): computed once, its keys and values copied into
  // every user's cache. A round-0 RTG or CTG token is such a token for every user of a λ.
  // Not for state tokens (their output is read). The caches hold the same bits as append()
  // would write where matmul_rows_independent() holds (see layers.h), else the same values
  // to float rounding.
  void append_shared(TokenKind kind, int round, const float* values, float lambda);
  // Appends round 0's tokens before the state token (its targets: `values`, one per token,
  // the same for every user) at one λ, from the model's PrefixCache or computed once with
  // append_shared and cached. Only at the start (position 0).
  void append_prefix(const float* values, float lambda);
  // Appends every remaining token of rounds [0, in.rounds) of users [first_user, first_user +
  // batch()) of `in` (all but what is appended already, e.g. round 0's prefix, and the last
  // round's action token, which nothing reads) at once: each layer's products over every
  // (user, token) row, each token attending to its user's cache up to itself. Writes the
  // logits [batch, rounds, K] of every state token at those users' rows of logits [in.batch,
  // in.rounds, K]. What the decisions use: the same bits as append() token by token where
  // rows_independent() (the rows of a product, a LayerNorm or the GELU do not interact), else
  // the same values to float rounding.
  void append_rounds(const SequenceBatch& in, int first_user, float* logits);
  // User `user`'s keys [layers, d, to - from] (transposed, as the caches hold them) and values
  // [layers, to - from, d] of positions [from, to): out of the caches (save_user), or into them
  // (load_user, before any token is queued). What the prefix cache keeps between calls.
  void save_user(int user, int from, int to, float* k, float* v) const;
  void load_user(int user, int from, int to, const float* k, const float* v);
  // Continues user `user` after `positions` of its tokens, loaded (load_user) or held by its
  // adopted storage (adopt_user), while the others continue from position(): e.g. a block
  // mixing users whose previous decision was kept with users computed from the start (or from
  // round 0's prefix). Before append_rounds.
  void resume_user(int user, int positions);
  // Points user `user`'s keys and values at storage outside the decoder, laid out as a user's
  // own: keys [layers, d, stride] (transposed, positions in lanes) and values [layers, stride,
  // d], stride a multiple of 16 holding every position this decoder appends. The user's tokens
  // are computed into it and attention reads it in place (a decision cache entry continues
  // without a copy). Until reset() or bind(); before any token is queued.
  void adopt_user(int user, float* k, float* v, int stride);

 private:
  const CodtModel* model_;
  int capacity_ = 0;
  int batch_ = 0;
  int pos_ = 0;
  int shared_ = 0;  // leading tokens that are the same for every user
  std::vector<int> resumed_;  // [capacity]: per user, the position resume_user set (0: none)
  int max_pos_ = 0;
  int key_stride_ = 0;        // max_pos rounded up to 16 (attend_cached's lanes)
  std::vector<TokenKind> kinds_;         // one round's tokens, in sequence order
  std::vector<TokenKind> prefix_kinds_;  // round 0's tokens before the state token
  // The tokens queued to be computed together: rows (one per user and token) in groups of
  // one kind each, their inputs in gathered_.
  struct Row {
    int user, position, round;
    float lambda;
  };
  struct Group {
    TokenKind kind;
    int begin, end;  // rows
    size_t input;    // offset in gathered_
  };
  std::vector<Row> rows_;
  std::vector<Row> state_rows_;  // append_rounds' state rows, in head_'s order
  std::vector<int> by_user_;     // flush's rows ordered by (user, position)
  std::vector<Group> groups_;
  Floats gathered_;
  Floats head_;  // logits of the state rows
  // Queues `batch_` rows of one token at position pos_ (values per user as append's).
  void enqueue(TokenKind kind, int round, const float* values, const float* lambda);
  // Computes every queued row, layer by layer: keys and values of every row into the caches,
  // and the rest of the last layer, the final LayerNorm and the head for the state rows
  // alone (one group at most), whose logits go to head_. Empties the queue.
  void flush();
  Floats k_cache_;            // [layers, capacity, d, key_stride]: keys transposed, positions in lanes
  Floats v_cache_;            // [layers, capacity, max_pos, d]
  // Where a user's keys and values live: its part of the caches above, or adopted storage.
  struct Slot {
    float* k;
    float* v;
    size_t k_layer, v_layer;  // floats from one layer's to the next's
    int stride;               // of the transposed keys
  };
  std::vector<Slot> slots_;  // [capacity]
  void own_slots();          // every user back in the caches above
  float* user_keys(int layer, int user) const { return slots_[user].k + slots_[user].k_layer * layer; }
  float* user_values(int layer, int user) const { return slots_[user].v + slots_[user].v_layer * layer; }
  Floats x_, h_, a_, q_, k_, v_, att_, o_, m_, proj_, in_;  // scratch
};

// ---- decisions -------------------------------------------------------------------------------

// actions [batch, A] = argmax of each action dimension's logits [batch, K] (first on ties).
void greedy_actions(const CodtConfig& c, const float* logits, int batch, int32_t* actions);

// logits [B, T, K] at every state token, through the KV-cached decoder (what decisions
// use): users in fixed blocks of 16 over the threads, so results do not depend on them (nor
// on the block size, where rows_independent); each block's tokens at once (append_rounds),
// on a decoder kept per thread. A block whose users all start with the same round-0 targets
// and λ takes those tokens from the prefix cache (shared_prefix), and no block computes the
// last round's action token (nothing reads it).
//
// keep_decisions (decisions: decide(), decideBatch(), not rollouts): from round 1 on, each
// user's keys and values go into the model's DecisionCache, and a user who finds their
// sequence up to the previous round's state token there (the previous round's decision)
// continues it in place and computes only the newer tokens, in the same products as the
// block's users computed from the start. Same bits either way (used only where
// rows_independent).
void codt_forward_incremental(const CodtModel& model, const SequenceBatch& in, float* logits, unsigned threads, bool shared_prefix = true,
                              bool keep_decisions = false);

// True when a user's logits are the same bits whoever else is decoded with them: the row
// GEMM is row-independent (matmul_rows_independent) and GELU's vectorised rows have no
// scalar tail (4 * d_model a multiple of 16).
bool rows_independent(const CodtConfig& c);

}  // namespace saco
