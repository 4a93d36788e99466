// Batches of messages as spans, and the loops that MAC or verify a range of
// them. The same loops serve the synchronous calls (one range: everything)
// and the worker threads (one range per thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "hmac.h"

namespace kmshmac {

struct Span {
  const uint8_t* data;
  size_t length;
};

// Message i of a batch: either packed (base + offsets, n+1 entries) or a
// list of spans (the array-of-Uint8Array form).
class SpanList {
 public:
  static SpanList Packed(const uint8_t* base, const uint32_t* offsets, size_t count) {
    SpanList list;
    list.base_ = base;
    list.offsets_ = offsets;
    list.count_ = count;
    return list;
  }
  static SpanList Spans(std::vector<Span> spans) {
    SpanList list;
    list.count_ = spans.size();
    list.spans_ = std::move(spans);
    return list;
  }

  size_t size() const { return count_; }
  Span operator[](size_t i) const {
    if (offsets_ != nullptr) return {base_ + offsets_[i], size_t(offsets_[i + 1] - offsets_[i])};
    return spans_[i];
  }

 private:
  const uint8_t* base_ = nullptr;
  const uint32_t* offsets_ = nullptr;
  size_t count_ = 0;
  std::vector<Span> spans_;
};

// MACs to check: at a fixed stride (packed) or one span each (array form).
class MacList {
 public:
  static MacList Strided(const uint8_t* base, size_t stride) {
    MacList list;
    list.base_ = base;
    list.stride_ = stride;
    return list;
  }
  static MacList Spans(std::vector<Span> spans) {
    MacList list;
    list.spans_ = std::move(spans);
    return list;
  }
  Span operator[](size_t i) const {
    if (base_ != nullptr) return {base_ + i * stride_, stride_};
    return spans_[i];
  }

 private:
  const uint8_t* base_ = nullptr;
  size_t stride_ = 0;
  std::vector<Span> spans_;
};

// MAC of message i goes to out + i * key.mac_length, for i in [begin, end).
void MacRange(const HmacKey& key, const SpanList& messages, size_t begin, size_t end, uint8_t* out);

// results[i] = 1 when macs[i] is the MAC of message i, else 0.
void VerifyRange(const HmacKey& key, const SpanList& messages, const MacList& macs, size_t begin, size_t end,
                 uint8_t* results);

}  // namespace kmshmac
