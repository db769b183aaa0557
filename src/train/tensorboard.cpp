#include "train/tensorboard.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "io/crc32c.h"

namespace fs = std::filesystem;

namespace rlhf::train {

namespace {
// Protobuf wire format: a field's key is (number << 3) | type, type 0 varint, 1 fixed64, 2 length-delimited,
// 5 fixed32; integers little-endian.
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_key(std::string& out, uint32_t field, WireType type) { put_varint(out, (field << 3) | type); }
void put_double(std::string& out, uint32_t field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, kFixed64);
  put_le(out, bits, 8);
}
void put_float(std::string& out, uint32_t field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, kFixed32);
  put_le(out, bits, 4);
}
void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kBytes);
  put_varint(out, bytes.size());
  out += bytes;
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

std::string encode_file_version_event(double wall_time) {
  std::string e;
  put_double(e, /*wall_time=*/1, wall_time);
  put_bytes(e, /*file_version=*/3, "brain.Event:2");
  return e;
}

std::string encode_scalar_event(double wall_time, int64_t step, const ScalarValues& values) {
  std::string summary;
  for (const auto& [tag, v] : values) {
    std::string value;
    put_bytes(value, /*tag=*/1, tag);
    put_float(value, /*simple_value=*/2, static_cast<float>(v));
    put_bytes(summary, /*value=*/1, value);
  }
  std::string e;
  put_double(e, /*wall_time=*/1, wall_time);
  put_key(e, /*step=*/2, kVarint);
  put_varint(e, static_cast<uint64_t>(step));  // int64: two's complement, as protobuf encodes negatives
  put_bytes(e, /*summary=*/5, summary);
  return e;
}

std::string tfrecord_frame(const std::string& data) {
  std::string len;
  put_le(len, data.size(), 8);
  std::string out = len;
  put_le(out, io::crc32c_masked(io::crc32c(len.data(), len.size())), 4);
  out += data;
  put_le(out, io::crc32c_masked(io::crc32c(data.data(), data.size())), 4);
  return out;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  fs::create_directories(dir);
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  const double now = unix_seconds();
  path_ = (fs::path(dir) / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(now)) + "." + host + "." +
                            std::to_string(::getpid()) + ".0"))
              .string();
  out_.open(path_, std::ios::binary | std::ios::trunc);
  RLHF_CHECK(out_, path_, ": cannot open for writing (hint: is ", dir, " writable?)");
  write(encode_file_version_event(now));
}

void TensorBoardWriter::add_scalars(int64_t step, const ScalarValues& values) {
  write(encode_scalar_event(unix_seconds(), step, values));
}

void TensorBoardWriter::write(const std::string& event) {
  out_ << tfrecord_frame(event);
  out_.flush();
  RLHF_CHECK(out_, path_, ": write failed (disk full?)");
}

}  // namespace rlhf::train
