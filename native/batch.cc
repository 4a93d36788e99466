#include "batch.h"

#include <cstring>

#include "mb/mb_dispatch.h"  // multi-buffer SIMD lanes (issue 7)
#include "recycled.h"

namespace kmshmac {
namespace {

bool RangesOverlap(const uint8_t* a, size_t a_length, const uint8_t* b, size_t b_length) {
  return a_length != 0 && b_length != 0 && a < b + b_length && b < a + a_length;
}

}  // namespace

void MacRange(const HmacKey& key, const SpanList& messages, size_t begin, size_t end, uint8_t* out) {
  if (mb::MacRange(key, messages, begin, end, out)) return;  // SIMD lanes took the batch
  for (size_t i = begin; i < end; i++) {
    const Span message = messages[i];
    key.Mac(message.data, message.length, out + i * key.mac_length);
  }
}

void VerifyRange(const HmacKey& key, const SpanList& messages, const MacList& macs, size_t begin, size_t end,
                 uint8_t* results) {
  if (mb::VerifyRange(key, messages, macs, begin, end, results)) return;  // SIMD lanes took the batch
  for (size_t i = begin; i < end; i++) {
    const Span message = messages[i];
    const Span mac = macs[i];
    results[i] = key.Verify(message.data, message.length, mac.data, mac.length) ? 1 : 0;
  }
}

bool PackedBatch::Overlaps(const uint8_t* at, size_t length, size_t mac_length) const {
  const auto* offset_bytes = reinterpret_cast<const uint8_t*>(offsets);
  return RangesOverlap(at, length, data, data_length) ||
         RangesOverlap(at, length, offset_bytes, (count + 1) * sizeof(uint32_t)) ||
         (macs != nullptr && RangesOverlap(at, length, macs, count * mac_length));
}

void MacAll(const HmacKey& key, const PackedBatch& batch, uint8_t* out) {
  const size_t length = batch.count * key.mac_length;
  if (!batch.Overlaps(out, length, key.mac_length)) {
    MacRange(key, batch.messages(), 0, batch.count, out);
    return;
  }
  // Writing MAC i could change message i+1 or the offsets still to be read.
  Recycled scratch = Recycled::Take(length);
  MacRange(key, batch.messages(), 0, batch.count, scratch.data());
  std::memcpy(out, scratch.data(), length);
}

void VerifyAll(const HmacKey& key, const PackedBatch& batch, uint8_t* results) {
  const MacList macs = MacList::Strided(batch.macs, key.mac_length);
  if (!batch.Overlaps(results, batch.count, key.mac_length)) {
    VerifyRange(key, batch.messages(), macs, 0, batch.count, results);
    return;
  }
  Recycled scratch = Recycled::Take(batch.count);
  VerifyRange(key, batch.messages(), macs, 0, batch.count, scratch.data());
  std::memcpy(results, scratch.data(), batch.count);
}

}  // namespace kmshmac
