// Building blocks shared by the architectures: norms, rotary embeddings, attention with a KV cache.
// Shapes: B batch, T new tokens, S = past + T keys, C hidden, H heads, Hkv key/value heads, D head dim.
#pragma once
#include <torch/torch.h>

#include "model/config.h"

namespace rlhf {

// Preallocated key/value cache, written in place (no concatenation per token).
// k[l], v[l]: (B, Hkv, capacity, D); positions [0, length) hold the keys/values of the tokens seen so far.
struct KVCache {
  std::vector<torch::Tensor> k, v;
  int64_t length = 0;
  int64_t capacity = 0;
  void reset() { length = 0; }
  // Keep only the batch rows in `rows` (I64), e.g. to drop finished sequences.
  void select_rows(const torch::Tensor& rows);
};

// RMSNorm (Llama): y = w · x / sqrt(mean(x²) + eps), computed in float32 as transformers does.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// Activation by its transformers name (gelu_new = tanh approximation).
torch::Tensor activation(const torch::Tensor& x, const std::string& name);

// Rotary embedding frequencies for position ids (B,T): returns cos, sin of shape (B, 1, T, D).
// inv_freq_i = 1 / theta^(2i/D), scaled per rope_scaling (linear, dynamic NTK, llama3).
std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const ModelConfig& cfg, const torch::Tensor& position_ids,
                                                     torch::ScalarType dtype);
torch::Tensor rope_inv_freq(const ModelConfig& cfg, int64_t seq_len);
// x: (B, H, T, D); x·cos + rotate_half(x)·sin, rotate_half(x) = [-x2, x1].
torch::Tensor rope_apply(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// Additive attention bias (B, 1, T, S) from the key padding mask (B, S) (1 = real token) for T queries at
// absolute positions S-T .. S-1: 0 where key j <= query i and mask[j] = 1, else the dtype's lowest value
// (finite, so fully masked pad rows give no NaN).
torch::Tensor attention_bias(const torch::Tensor& attention_mask, int64_t T, torch::ScalarType dtype);

// Scaled dot-product attention with grouped-query heads.
// q: (B, H, T, D), k/v: (B, Hkv, S, D), bias: (B, 1, T, S). Returns (B, T, H·D).
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& bias);
// The slow, obvious version (explicit softmax), pinned to attention() by a test.
torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& bias);

// Append k/v (B, Hkv, T, D) for layer l to the cache and return the keys/values of all S = length + T
// positions. Without a cache returns k, v as they are. The caller advances cache->length after all layers.
std::pair<torch::Tensor, torch::Tensor> kv_cache_append(KVCache* cache, int64_t layer, const torch::Tensor& k,
                                                        const torch::Tensor& v);

}  // namespace rlhf
