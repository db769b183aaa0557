// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord frames (TensorBoard event files).
// Debian has no C/C++ library for it (bookworm: python3-crc32c only; abseil's absl/crc arrived after 20220623), so
// this is the plain table-driven byte loop, pinned to the RFC 3720 (iSCSI) B.4 vectors in tests/test_train_core.cpp.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rlhf::io {

// crc32c(data) for one buffer; crc32c_extend continues a running value (crc32c(ab) = extend(crc32c(a), b)).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);
inline uint32_t crc32c(const void* data, size_t n) { return crc32c_extend(0, data, n); }

// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8 (so a CRC of CRCs is not a CRC).
inline uint32_t crc32c_masked(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

}  // namespace rlhf::io
