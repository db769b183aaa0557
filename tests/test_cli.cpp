// The command-line interfaces that tests and outside checks rely on, run as a user runs them (the rlhf binary),
// compared against transformers' and tokenizers' outputs in tests/data.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include "io/safetensors.h"
#include "test_util.h"

using nlohmann::json;
namespace test = rlhf::test;

namespace {
json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}
}  // namespace

// The binary runs against the libtorch this test was compiled with (Debian's 1.13 or PyPI's 2.x build), with
// CUDA compiled in exactly when CMake found it.
TEST(Cli, VersionNamesLibtorchAndCuda) {
  std::string out;
  ASSERT_EQ(test::run_rlhf("--version", &out), 0) << out;
  EXPECT_NE(out.find(std::string("libtorch ") + TORCH_VERSION), std::string::npos) << out;
#ifdef RLHF_CUDA
  EXPECT_NE(out.find("CUDA compiled in: yes"), std::string::npos) << out;
#else
  EXPECT_NE(out.find("CUDA compiled in: no"), std::string::npos) << out;
#endif
  EXPECT_TRUE(std::regex_search(out, std::regex("CUDA devices: [0-9]+\\)"))) << out;
}

TEST(Cli, ForwardWritesTransformersLogits) {
  test::TempDir tmp;
  auto ref = rlhf::io::load_safetensors(test::data("models/llama-tiny/reference.safetensors"));
  rlhf::io::save_safetensors(tmp / "in.safetensors",
                             {{"input_ids", ref["right.input_ids"]}, {"attention_mask", ref["right.attention_mask"]}});
  std::string out;
  ASSERT_EQ(test::run_rlhf("forward --device cpu --model " + test::data("models/llama-tiny") + " --input " +
                               tmp / "in.safetensors" + " --output " + tmp / "out.safetensors",
                           &out),
            0)
      << out;
  auto logits = rlhf::io::load_safetensors(tmp / "out.safetensors")["logits"];
  auto expect = ref["right.logits"];
  auto m = ref["right.attention_mask"].to(torch::kBool).unsqueeze(-1).expand_as(expect);
  const double err = (logits - expect).abs().masked_select(m).max().item<double>() /
                     expect.abs().masked_select(m).max().item<double>();
  EXPECT_LT(err, 1e-4);
  // A reward model writes scores.
  auto rm = rlhf::io::load_safetensors(test::data("models/gpt2-tiny-rm/reference.safetensors"));
  rlhf::io::save_safetensors(tmp / "rm_in.safetensors",
                             {{"input_ids", rm["input_ids"]}, {"attention_mask", rm["attention_mask"]}});
  ASSERT_EQ(test::run_rlhf("forward --device cpu --model " + test::data("models/gpt2-tiny-rm") + " --input " +
                               tmp / "rm_in.safetensors" + " --output " + tmp / "rm_out.safetensors",
                           &out),
            0)
      << out;
  auto scores = rlhf::io::load_safetensors(tmp / "rm_out.safetensors")["scores"];
  EXPECT_LT(((scores - rm["scores"]).abs().max() / rm["scores"].abs().max()).item<double>(), 1e-4);
  // A bad input file names the file.
  std::ofstream(tmp / "bad.safetensors") << "not a safetensors file";
  EXPECT_NE(test::run_rlhf("forward --device cpu --model " + test::data("models/llama-tiny") + " --input " +
                               tmp / "bad.safetensors" + " --output " + tmp / "o.safetensors",
                           &out),
            0);
  EXPECT_NE(out.find("bad.safetensors"), std::string::npos) << out;
}

TEST(Cli, GenerateMatchesTransformersGreedy) {
  test::TempDir tmp;
  auto ref = rlhf::io::load_safetensors(test::data("models/gpt2-tiny/reference.safetensors"));
  rlhf::io::save_safetensors(tmp / "in.safetensors", {{"input_ids", ref["generate.input_ids"]},
                                                      {"attention_mask", ref["generate.attention_mask"]}});
  std::string out;
  ASSERT_EQ(test::run_rlhf("generate --device cpu --greedy --max-new-tokens 12 --model " +
                               test::data("models/gpt2-tiny") + " --input " + tmp / "in.safetensors" + " --output " +
                               tmp / "out.safetensors",
                           &out),
            0)
      << out;
  auto ids = rlhf::io::load_safetensors(tmp / "out.safetensors")["output_ids"];
  EXPECT_TRUE(torch::equal(ids, ref["generate.output_ids"])) << ids << ref["generate.output_ids"];
  // Text in, text out, with the real GPT-2 tokenizer (transformers' greedy text).
  auto e2e = read_json(test::data("models/gpt2-e2e/reference.json"));
  ASSERT_EQ(test::run_rlhf("generate --device cpu --greedy --max-new-tokens 8 --model " +
                               test::data("models/gpt2-e2e") + " --prompt '" + e2e["prompt"].get<std::string>() + "'",
                           &out),
            0)
      << out;
  const std::string expect = e2e["output_text"].get<std::string>().substr(e2e["prompt"].get<std::string>().size());
  EXPECT_NE(out.find(expect), std::string::npos) << out << " vs " << expect;
}

TEST(Cli, TokenizeDetokenizeChatTemplate) {
  test::TempDir tmp;
  std::string out;
  const std::string qwen = test::data("tokenizers/qwen3");
  auto ref = read_json(qwen + "/reference.json");
  // --input: one JSON string per line -> one JSON array per line.
  {
    std::ofstream in(tmp / "texts.jsonl");
    for (int i = 0; i < 5; ++i) in << json(ref["cases"][i]["text"]).dump() << "\n";
  }
  ASSERT_EQ(test::run_rlhf("tokenize --tokenizer " + qwen + " --input " + tmp / "texts.jsonl", &out), 0) << out;
  std::istringstream lines(out);
  std::string line;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(std::getline(lines, line));
    EXPECT_EQ(json::parse(line), ref["cases"][i]["ids"]) << i;
  }
  ASSERT_EQ(test::run_rlhf("tokenize --tokenizer " + test::data("tokenizers/llama2") +
                               " --add-special-tokens --text 'Hello world'",
                           &out),
            0)
      << out;
  EXPECT_EQ(json::parse(out).front(), 1);  // <s>
  ASSERT_EQ(test::run_rlhf("detokenize --tokenizer " + test::data("tokenizers/gpt2") + " --ids 15496,995", &out), 0);
  EXPECT_EQ(out.substr(0, 11), "Hello world");
  // chat-template renders exactly what transformers rendered.
  for (const auto& c : ref["chat"]) {
    std::ofstream(tmp / "m.json") << c["messages"].dump();
    ASSERT_EQ(test::run_rlhf("chat-template --tokenizer " + qwen + " --messages " + tmp / "m.json" +
                                 (c["add_generation_prompt"].get<bool>() ? " --add-generation-prompt" : ""),
                             &out),
              0)
        << out;
    EXPECT_EQ(out, c["rendered"].get<std::string>());
  }
  EXPECT_NE(test::run_rlhf("tokenize --tokenizer " + tmp / "nowhere" + " --text x", &out), 0);
  EXPECT_NE(out.find("nowhere"), std::string::npos) << out;
}

TEST(Cli, InitAndInspect) {
  test::TempDir tmp;
  std::string out;
  ASSERT_EQ(test::run_rlhf("init --config " + test::data("models/llama-tiny/config.json") + " --out " + tmp / "m" +
                               " --tokenizer " + test::data("tokenizers/gpt2") + " --seed 3",
                           &out),
            0)
      << out;
  ASSERT_EQ(test::run_rlhf("inspect --device cpu --model " + tmp / "m", &out), 0) << out;
  auto info = json::parse(out);
  // llama-tiny by hand: embed 512·64 + lm_head 512·64 + 2 layers·(q 64·64 + k 32·64 + v 32·64 + o 64·64 +
  // gate/up/down 3·128·64 + 2 norms·64) + final norm 64
  const int64_t per_layer = 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 128 * 64 + 2 * 64;
  EXPECT_EQ(info["parameters"].get<int64_t>(), 2 * 512 * 64 + 2 * per_layer + 64);
  EXPECT_EQ(info["architecture"], "LlamaForCausalLM");
  EXPECT_TRUE(std::filesystem::exists(tmp / "m/tokenizer.json"));
}
