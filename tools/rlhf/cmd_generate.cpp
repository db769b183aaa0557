// rlhf generate --model DIR (--prompt TEXT [--chat] | --input IN.safetensors --output OUT.safetensors)
//               --max-new-tokens N [--greedy | --temperature T --top-k K --top-p P] [--seed S] [--stop-at-eos]
// --input: IN holds left-padded input_ids and attention_mask; OUT gets output_ids (B×(T+N)), prompt + new
// tokens as transformers' generate returns them (no early stop unless --stop-at-eos).
// --prompt: tokenized with the folder's tokenizer, the answer streamed to stdout token by token.
#include <iostream>

#include "command.h"
#include "common/error.h"
#include "common/runtime.h"
#include "io/safetensors.h"
#include "model/generate.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace {

struct GenerateFlags {
  std::string model, prompt, input, output;
  bool chat = false;
  rlhf::SamplingOptions sampling;
};

int run_generate(GenerateFlags o) {
  const auto device = rlhf::resolve_device(rlhf::cli::runtime_flags().device);
  RLHF_CHECK(o.prompt.empty() != o.input.empty(), "generate: give exactly one of --prompt or --input");
  RLHF_CHECK(o.input.empty() || !o.output.empty(), "generate: --input needs --output");
  RLHF_CHECK(o.sampling.greedy || o.sampling.temperature > 0, "--temperature must be > 0 (or use --greedy)");
  RLHF_CHECK(o.sampling.top_p > 0 && o.sampling.top_p <= 1, "--top-p must be in (0, 1]");
  RLHF_CHECK(o.sampling.max_new_tokens > 0, "--max-new-tokens must be > 0");
  rlhf::LoadOptions lo;
  lo.device = device;
  lo.head = "lm";
  auto model = rlhf::load_model(o.model, lo);
  const auto& cfg = model->config();
  const int64_t pad = cfg.pad_token_id.value_or(cfg.eos_token_ids.empty() ? 0 : cfg.eos_token_ids[0]);
  torch::manual_seed(o.sampling.seed);
  auto gen = at::detail::createCPUGenerator(o.sampling.seed);

  if (!o.input.empty()) {
    auto in = rlhf::io::load_safetensors(o.input);
    RLHF_CHECK(in.count("input_ids"), o.input, ": needs a tensor \"input_ids\" (I64, B×T, left padded)");
    auto ids = in["input_ids"].to(torch::kInt64).to(device);
    auto mask = in.count("attention_mask") ? in["attention_mask"].to(torch::kInt64).to(device) : torch::ones_like(ids);
    auto out = rlhf::generate(*model, ids, mask, o.sampling, cfg.eos_token_ids, pad, gen);
    rlhf::io::save_safetensors(o.output, {{"output_ids", out.output_ids.cpu()}});
    return 0;
  }
  auto tok = rlhf::tok::Tokenizer::from_dir(o.model);
  std::string text = o.prompt;
  if (o.chat) {
    std::string tmpl = tok.chat_template();
    RLHF_CHECK(!tmpl.empty(), o.model, "/tokenizer_config.json: no chat_template (hint: drop --chat)");
    nlohmann::json messages = nlohmann::json::array({{{"role", "user"}, {"content", o.prompt}}});
    text = rlhf::tok::render_chat(tmpl, messages, /*add_generation_prompt=*/true,
                                  rlhf::tok::special_tokens_map(tok.config(), o.model + "/tokenizer_config.json"));
  }
  auto ids32 = tok.encode(text, /*add_special_tokens=*/!o.chat);
  RLHF_CHECK(!ids32.empty(), "generate: the prompt encodes to no tokens");
  std::vector<int64_t> ids(ids32.begin(), ids32.end());
  auto [input_ids, mask] = rlhf::left_pad({ids}, pad);
  std::vector<int32_t> new_ids;
  std::string printed;
  std::vector<int64_t> eos = cfg.eos_token_ids;
  if (auto e = tok.eos_id()) eos.push_back(*e);
  o.sampling.stop_at_eos = true;
  rlhf::generate(*model, input_ids.to(device), mask.to(device), o.sampling, eos, pad, gen,
                 [&](int64_t, const torch::Tensor& next) {
                   const int64_t t = next[0].item<int64_t>();
                   if (std::find(eos.begin(), eos.end(), t) != eos.end()) return;
                   new_ids.push_back(static_cast<int32_t>(t));
                   // Print the new text; wait while it ends in a partial UTF-8 character (U+FFFD).
                   std::string full = tok.decode(new_ids, /*skip_special_tokens=*/true);
                   if (full.size() >= 3 && full.compare(full.size() - 3, 3, "\xEF\xBF\xBD") == 0) return;
                   if (full.compare(0, printed.size(), printed) == 0) {
                     std::cout << full.substr(printed.size()) << std::flush;
                     printed = full;
                   }
                 });
  std::string full = tok.decode(new_ids, true);
  if (full.size() > printed.size() && full.compare(0, printed.size(), printed) == 0)
    std::cout << full.substr(printed.size());
  std::cout << std::endl;
  return 0;
}

rlhf::cli::Command reg{"generate", "Generate text or token ids with a causal LM (KV cache)", [](CLI::App& app) {
  auto o = std::make_shared<GenerateFlags>();
  o->sampling.stop_at_eos = false;
  o->sampling.max_new_tokens = 32;
  app.add_option("--model", o->model, "Hugging Face model folder")->required();
  app.add_option("--prompt", o->prompt, "text prompt (needs tokenizer.json in the model folder)");
  app.add_flag("--chat", o->chat, "format --prompt as a user message with the chat template");
  app.add_option("--input", o->input, "safetensors with left-padded input_ids and attention_mask");
  app.add_option("--output", o->output, "safetensors to write output_ids into");
  app.add_option("--max-new-tokens", o->sampling.max_new_tokens, "tokens to generate")->capture_default_str();
  app.add_flag("--greedy", o->sampling.greedy, "argmax decoding");
  app.add_option("--temperature", o->sampling.temperature, "sampling temperature")->capture_default_str();
  app.add_option("--top-k", o->sampling.top_k, "keep the k most likely tokens (0: off)")->capture_default_str();
  app.add_option("--top-p", o->sampling.top_p, "nucleus sampling mass (1: off)")->capture_default_str();
  app.add_option("--seed", o->sampling.seed, "random seed")->capture_default_str();
  app.add_flag("--stop-at-eos", o->sampling.stop_at_eos, "pad a sequence after its EOS and stop when all are done");
  return [o] { return run_generate(*o); };
}};

}  // namespace
