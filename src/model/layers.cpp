#include "model/layers.h"

#include <cmath>

#include "common/error.h"
#include "model/decode_kernels.h"

namespace rlhf {

void KVCache::select_rows(const torch::Tensor& rows) {
  for (auto& t : k) t = t.index_select(0, rows);
  for (auto& t : v) t = t.index_select(0, rows);
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight_stored, double eps) {
  // A weight stored in another dtype (TransformerLM::store_frozen_weights) is cast to x's, exactly.
  const auto weight = weight_stored.scalar_type() == x.scalar_type() ? weight_stored : weight_stored.to(x.scalar_type());
  if (auto y = small_rms_norm(x, weight, eps); y.defined()) return y;  // decode steps, see decode_kernels.h
  auto xf = x.to(torch::kFloat32);
  auto var = xf.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (xf * torch::rsqrt(var + eps)).to(x.scalar_type());
}

torch::Tensor activation(const torch::Tensor& x, const std::string& name) {
  if (name == "silu") return torch::silu(x);
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return torch::gelu(x, "tanh");
  if (name == "gelu") return torch::gelu(x);
  if (name == "relu") return torch::relu(x);
  fail("unsupported activation \"", name, "\"");
}

torch::Tensor rope_inv_freq(const ModelConfig& cfg, int64_t seq_len) {
  const int64_t D = cfg.head_dim;
  double base = cfg.rope_theta;
  const auto& rs = cfg.rope_scaling;
  if (rs.type == "dynamic" && seq_len > rs.original_max_position) {
    // Dynamic NTK: grow the base with the sequence length beyond the trained context.
    base = base * std::pow(rs.factor * seq_len / rs.original_max_position - (rs.factor - 1.0),
                           static_cast<double>(D) / (D - 2));
  }
  auto exponent = torch::arange(0, D, 2, torch::kInt64).to(torch::kFloat32) / static_cast<float>(D);
  auto inv_freq = 1.0 / torch::pow(torch::tensor(base, torch::kFloat32), exponent);
  if (rs.type == "linear") inv_freq = inv_freq / rs.factor;
  if (rs.type == "llama3") {
    const double old_len = static_cast<double>(rs.original_max_position);
    const double low_wavelen = old_len / rs.low_freq_factor, high_wavelen = old_len / rs.high_freq_factor;
    auto wavelen = 2 * M_PI / inv_freq;
    auto scaled = torch::where(wavelen > low_wavelen, inv_freq / rs.factor, inv_freq);
    auto smooth = (old_len / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled;
    auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    inv_freq = torch::where(medium, smoothed, scaled);
  }
  return inv_freq;
}

std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const ModelConfig& cfg, const torch::Tensor& position_ids,
                                                     torch::ScalarType dtype) {
  int64_t seq_len = 0;
  if (cfg.rope_scaling.type == "dynamic") seq_len = position_ids.max().item<int64_t>() + 1;
  auto inv_freq = rope_inv_freq(cfg, seq_len).to(position_ids.device());
  // freqs: (B, T, D/2) computed in float32, as transformers does
  auto freqs = position_ids.to(torch::kFloat32).unsqueeze(-1) * inv_freq;
  auto emb = torch::cat({freqs, freqs}, -1).unsqueeze(1);  // (B, 1, T, D)
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

torch::Tensor rope_apply(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  if (auto y = small_rope(x, cos, sin); y.defined()) return y;  // decode steps, see decode_kernels.h
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return x * cos + torch::cat({-x2, x1}, -1) * sin;
}

torch::Tensor attention_bias(const torch::Tensor& attention_mask, int64_t T, torch::ScalarType dtype) {
  const int64_t S = attention_mask.size(1);
  auto opts = torch::TensorOptions().device(attention_mask.device());
  const double lowest = dtype == torch::kFloat64 ? std::numeric_limits<double>::lowest()
                        : dtype == torch::kBFloat16 ? -3.38e38
                        : dtype == torch::kFloat16  ? -65504.0
                                                    : std::numeric_limits<float>::lowest();
  auto zero = torch::zeros({}, opts.dtype(dtype));
  auto neg = torch::full({}, lowest, opts.dtype(dtype));
  // One new token (a decode step) sees every key: only the padding matters. Same values, fewer ops.
  if (T == 1) return torch::where(attention_mask.to(torch::kBool).reshape({-1, 1, 1, S}), zero, neg);
  // causal: key j visible to query i (absolute position S - T + i) iff j <= S - T + i
  auto q_pos = torch::arange(S - T, S, opts.dtype(torch::kInt64)).unsqueeze(1);  // (T, 1)
  auto k_pos = torch::arange(0, S, opts.dtype(torch::kInt64)).unsqueeze(0);      // (1, S)
  auto visible = (k_pos <= q_pos).unsqueeze(0).unsqueeze(0)                      // (1, 1, T, S)
                     .logical_and(attention_mask.to(torch::kBool).unsqueeze(1).unsqueeze(1));  // (B, 1, T, S)
  return torch::where(visible, zero, neg);
}

namespace {
// (B, Hkv, S, D) -> (B, H, S, D): query head h uses kv head h / (H / Hkv), as transformers' repeat_kv.
torch::Tensor repeat_kv(const torch::Tensor& x, int64_t n_rep) {
  if (n_rep == 1) return x;
  return x.repeat_interleave(n_rep, /*dim=*/1);
}
}  // namespace

torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& bias) {
  const int64_t n_rep = q.size(1) / k.size(1);
  auto kk = repeat_kv(k, n_rep), vv = repeat_kv(v, n_rep);
  auto scores = torch::matmul(q, kk.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1))) + bias;
  auto probs = torch::softmax(scores, -1, torch::kFloat32).to(q.scalar_type());
  auto out = torch::matmul(probs, vv);  // (B, H, T, D)
  return out.transpose(1, 2).reshape({q.size(0), q.size(2), q.size(1) * q.size(3)});
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& bias) {
  if (auto out = decode_attention(q, k, v, bias); out.defined()) return out;  // CPU decode step, see decode_kernels.h
#if defined(TORCH_VERSION_MAJOR) && TORCH_VERSION_MAJOR >= 2
  const int64_t n_rep = q.size(1) / k.size(1);
  auto out = at::scaled_dot_product_attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), bias);
  return out.transpose(1, 2).reshape({q.size(0), q.size(2), q.size(1) * q.size(3)});
#else
  // Grouped-query attention without repeat_kv's copies of the keys and values (the whole cache, every layer and
  // decode step): the n_rep query heads that share kv head g (heads g·n_rep … g·n_rep + n_rep − 1) are stacked as
  // the rows of one matrix, (B, Hkv, n_rep·T, D) · (B, Hkv, D, S). Otherwise the reference's ops in its order.
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2), n_rep = H / Hkv;
  if (n_rep == 1) return attention_reference(q, k, v, bias);
  auto qg = q.reshape({B, Hkv, n_rep * T, D});
  auto scores = torch::matmul(qg, k.transpose(-2, -1)).view({B, H, T, S}) / std::sqrt(static_cast<double>(D)) + bias;
  auto probs = torch::softmax(scores, -1, torch::kFloat32).to(q.scalar_type());
  auto out = torch::matmul(probs.view({B, Hkv, n_rep * T, S}), v);  // (B, Hkv, n_rep·T, D)
  return out.view({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D});
#endif
}

std::pair<torch::Tensor, torch::Tensor> kv_cache_append(KVCache* cache, int64_t layer, const torch::Tensor& k,
                                                        const torch::Tensor& v) {
  if (!cache) return {k, v};
  const int64_t T = k.size(2);
  if (static_cast<int64_t>(cache->k.size()) <= layer) {
    cache->k.resize(layer + 1);
    cache->v.resize(layer + 1);
  }
  auto& kc = cache->k[layer];
  auto& vc = cache->v[layer];
  if (!kc.defined() || kc.size(0) != k.size(0) || cache->length + T > kc.size(2)) {
    // (Re)allocate with room for `capacity` positions, keeping what is stored.
    const int64_t cap = std::max(cache->capacity, cache->length + T);
    auto nk = torch::empty({k.size(0), k.size(1), cap, k.size(3)}, k.options());
    auto nv = torch::empty({v.size(0), v.size(1), cap, v.size(3)}, v.options());
    if (kc.defined() && cache->length > 0 && kc.size(0) == k.size(0)) {
      nk.narrow(2, 0, cache->length).copy_(kc.narrow(2, 0, cache->length));
      nv.narrow(2, 0, cache->length).copy_(vc.narrow(2, 0, cache->length));
    }
    kc = nk;
    vc = nv;
    cache->capacity = cap;
  }
  kc.narrow(2, cache->length, T).copy_(k);
  vc.narrow(2, cache->length, T).copy_(v);
  return {kc.narrow(2, 0, cache->length + T), vc.narrow(2, 0, cache->length + T)};
}

}  // namespace rlhf
