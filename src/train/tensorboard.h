// TensorBoard event files for `--report-to tensorboard`, beside metrics.jsonl (MetricsLog writes both), so that the
// curves people already look at come without TensorFlow or W&B.
//
//   file    = record*        record = len (u64 LE) · masked_crc32c(len) (u32 LE) · data[len] · masked_crc32c(data)
//   data    = Event          1: wall_time (double)  2: step (int64)  3: file_version (string)  5: summary (Summary)
//   Summary = 1: value (repeated Value)             Value = 1: tag (string)  2: simple_value (float)
// (tensorboard/compat/proto/event.proto and summary.proto; a record frame is TFRecord's.) The first record says
// file_version "brain.Event:2"; then one Event per logged step with one Value per metric.
//
// The four message fields are encoded by hand (protobuf's wire format: varint keys, fixed64/fixed32 numbers,
// length-delimited strings and messages) rather than with libprotobuf: that would need protoc and generated code
// for a copy of TensorBoard's .proto files at build time to write these few bytes.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace rlhf::train {

using ScalarValues = std::vector<std::pair<std::string, double>>;  // tag -> value

// The serialised Event protobufs (no record frame).
std::string encode_file_version_event(double wall_time);
std::string encode_scalar_event(double wall_time, int64_t step, const ScalarValues& values);
// One TFRecord frame around data.
std::string tfrecord_frame(const std::string& data);

class TensorBoardWriter {
 public:
  // Creates dir and a new file dir/events.out.tfevents.<unix seconds>.<host>.<pid>.0 (SummaryWriter's naming), which
  // starts with the file_version event. A resumed run adds a file; TensorBoard reads a folder's files in name order.
  explicit TensorBoardWriter(const std::string& dir);
  // One event at `step`, values stored as float32 (TensorBoard's simple_value). Flushed at once: a crash loses at
  // most the record being written, and readers stop cleanly before a cut record.
  void add_scalars(int64_t step, const ScalarValues& values);
  const std::string& path() const { return path_; }

 private:
  void write(const std::string& event);
  std::string path_;
  std::ofstream out_;
};

}  // namespace rlhf::train
