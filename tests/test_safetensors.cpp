// safetensors reader/writer: round trips of every dtype, and corrupt files give errors naming file and tensor.
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "io/safetensors.h"
#include "test_util.h"

using namespace rlhf;

namespace {

std::string read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_all(const std::string& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}
// A file with a hand-written header and `data` bytes.
std::string make_file(const std::string& header, const std::string& data) {
  std::string h = header;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
  return out + h + data;
}
using test::error_of;

}  // namespace

TEST(Safetensors, RoundTripAllDtypes) {
  test::TempDir tmp;
  std::map<std::string, torch::Tensor> t;
  t["f64"] = torch::randn({3, 2}, torch::kFloat64);
  t["f32"] = torch::randn({4});
  t["f16"] = torch::randn({2, 2}).to(torch::kFloat16);
  t["bf16"] = torch::randn({5}).to(torch::kBFloat16);
  t["i64"] = torch::arange(6, torch::kInt64).view({2, 3});
  t["i32"] = torch::arange(3, torch::kInt32);
  t["i16"] = torch::arange(3, torch::kInt16);
  t["i8"] = torch::arange(-2, 2, torch::kInt8);
  t["u8"] = torch::arange(4, torch::kUInt8);
  t["bool"] = torch::tensor({true, false, true});
  t["empty"] = torch::empty({0, 3});
  io::save_safetensors(tmp / "a.safetensors", t);
  const std::string bytes = read_all(tmp / "a.safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ((8 + n) % 8, 0u) << "data must start 8-byte aligned";
  EXPECT_NE(bytes.find("\"__metadata__\":{\"format\":\"pt\"}"), std::string::npos);
  auto back = io::load_safetensors(tmp / "a.safetensors");
  ASSERT_EQ(back.size(), t.size());
  for (const auto& [k, v] : t) {
    ASSERT_TRUE(back.count(k)) << k;
    EXPECT_EQ(back[k].scalar_type(), v.scalar_type()) << k;
    EXPECT_EQ(back[k].sizes(), v.sizes()) << k;
    EXPECT_TRUE(torch::equal(back[k], v)) << k;
  }
}

TEST(Safetensors, ReadsFileWrittenByTheLibrary) {
  // reference.safetensors was written by the Python safetensors library.
  auto t = io::load_safetensors(test::data("models/gpt2-tiny/reference.safetensors"));
  ASSERT_TRUE(t.count("right.logits"));
  EXPECT_EQ(t["right.logits"].sizes(), (std::vector<int64_t>{3, 10, 512}));
  EXPECT_EQ(t["right.input_ids"].scalar_type(), torch::kInt64);
}

TEST(Safetensors, TruncatedFile) {
  test::TempDir tmp;
  std::string bytes = read_all(test::data("models/gpt2-tiny/model.safetensors"));
  write_all(tmp / "t.safetensors", bytes.substr(0, bytes.size() - 100));
  auto msg = error_of([&] { io::SafetensorsFile f(tmp / "t.safetensors"); });
  EXPECT_NE(msg.find("t.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("transformer.wte.weight"), std::string::npos) << msg;  // the last tensor no longer fits
  write_all(tmp / "short.safetensors", bytes.substr(0, 5));
  msg = error_of([&] { io::SafetensorsFile f(tmp / "short.safetensors"); });
  EXPECT_NE(msg.find("too short"), std::string::npos) << msg;
  write_all(tmp / "hdr.safetensors", bytes.substr(0, 100));
  msg = error_of([&] { io::SafetensorsFile f(tmp / "hdr.safetensors"); });
  EXPECT_NE(msg.find("header length"), std::string::npos) << msg;
}

TEST(Safetensors, CorruptHeaders) {
  test::TempDir tmp;
  const std::string data(16, '\0');
  struct Case {
    std::string header, expect;
  } cases[] = {
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       "overlap"},
      {R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", "unknown dtype \"Q4\""},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "need 12"},
      {R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", "outside the data section"},
      {R"({"a":{"dtype":"F32","shape":[2]}})", "needs dtype, shape and data_offsets"},
      {R"({"a":)", "not valid JSON"},
      // Found while writing fuzz_safetensors: 4 · 2^32 · 2^32 bytes wrapped to 0 and matched an empty span.
      {R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", "too large"},
      {R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", "non-negative integers"},
      {R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", "non-negative integers"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,"8"]}})", "data_offsets must be [begin, end]"},
      {R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", "dtype must be a string"},
      {R"([1,2])", "must be a JSON object"},
  };
  for (const auto& c : cases) {
    write_all(tmp / "c.safetensors", make_file(c.header, data));
    auto msg = error_of([&] { io::SafetensorsFile f(tmp / "c.safetensors"); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.header << " -> " << msg;
    EXPECT_NE(msg.find("c.safetensors"), std::string::npos) << msg;
  }
}

TEST(Safetensors, ShardedWriteAndRead) {
  test::TempDir tmp;
  std::map<std::string, torch::Tensor> t;
  for (int i = 0; i < 5; ++i) t["w" + std::to_string(i)] = torch::randn({64});
  io::save_checkpoint_tensors(tmp.path.string(), t, /*max_shard_bytes=*/600);
  EXPECT_TRUE(std::filesystem::exists(tmp / "model.safetensors.index.json"));
  EXPECT_TRUE(std::filesystem::exists(tmp / "model-00001-of-00003.safetensors"));
  auto back = io::load_checkpoint_tensors(tmp.path.string());
  ASSERT_EQ(back.size(), 5u);
  for (const auto& [k, v] : t) EXPECT_TRUE(torch::equal(back[k], v));
  std::filesystem::remove(tmp / "model-00002-of-00003.safetensors");
  auto msg = error_of([&] { io::load_checkpoint_tensors(tmp.path.string()); });
  EXPECT_NE(msg.find("model-00002-of-00003.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
}
