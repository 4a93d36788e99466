#include "batch.h"

#include "mb/mb_dispatch.h"  // multi-buffer SIMD lanes (issue 7)

namespace kmshmac {

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

}  // namespace kmshmac
