// Batches of messages as spans, and the loops that MAC or verify a range of
// them. The same loops serve the synchronous calls (one range: everything)
// and the pool threads (one range per chunk).
#pragma once

#include <cstddef>
#include <cstdint>

#include "hmac.h"

namespace kmshmac {

struct Span {
  const uint8_t* data;
  size_t length;
};

// Message i of a packed batch: base[offsets[i] .. offsets[i+1]), n+1 offsets.
// The addon only ever sees packed batches: the array-of-Uint8Array forms are
// packed in JavaScript, so native code never walks a JS array.
class SpanList {
 public:
  static SpanList Packed(const uint8_t* base, const uint32_t* offsets, size_t count) {
    SpanList list;
    list.base_ = base;
    list.offsets_ = offsets;
    list.count_ = count;
    return list;
  }

  size_t size() const { return count_; }
  Span operator[](size_t i) const { return {base_ + offsets_[i], size_t(offsets_[i + 1] - offsets_[i])}; }

 private:
  const uint8_t* base_ = nullptr;
  const uint32_t* offsets_ = nullptr;
  size_t count_ = 0;
};

// MACs to check, at a fixed stride (the MAC length).
class MacList {
 public:
  static MacList Strided(const uint8_t* base, size_t stride) {
    MacList list;
    list.base_ = base;
    list.stride_ = stride;
    return list;
  }
  Span operator[](size_t i) const { return {base_ + i * stride_, stride_}; }

 private:
  const uint8_t* base_ = nullptr;
  size_t stride_ = 0;
};

// MAC of message i goes to out + i * key.mac_length, for i in [begin, end).
void MacRange(const HmacKey& key, const SpanList& messages, size_t begin, size_t end, uint8_t* out);

// results[i] = 1 when macs[i] is the MAC of message i, else 0.
void VerifyRange(const HmacKey& key, const SpanList& messages, const MacList& macs, size_t begin, size_t end,
                 uint8_t* results);

// A whole packed batch as the caller's memory: data, offsets (count+1 of
// them, already checked to be non-decreasing and within data) and, for
// verification, count MACs at the key's stride.
struct PackedBatch {
  const uint8_t* data;
  size_t data_length;
  const uint32_t* offsets;
  size_t count;
  const uint8_t* macs = nullptr;

  SpanList messages() const { return SpanList::Packed(data, offsets, count); }
  // Whether [at, at + length) shares a byte with any input.
  bool Overlaps(const uint8_t* at, size_t length, size_t mac_length) const;
};

// MACs (or verifies) every message of `batch` into `out`. `out` may overlap
// any input: then the results go to scratch memory first, so every input is
// read before any result is written. Never a crash, never a wrong MAC.
void MacAll(const HmacKey& key, const PackedBatch& batch, uint8_t* out);
void VerifyAll(const HmacKey& key, const PackedBatch& batch, uint8_t* results);

}  // namespace kmshmac
