// The lane scheduler: feeds messages to a compression kernel's lanes and
// turns chaining values into HMACs. Baseline code (no target attributes), a
// template over where messages come from and where MACs go, so the addon's
// dispatcher streams a whole batch through the lanes without copying its
// span list, and verification compares each MAC as it completes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mb_hmac.h"
#include "mb_internal.h"

namespace kmshmac {
namespace mb {
namespace detail {

inline void PutBe(uint8_t* p, uint32_t v) {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}
inline void PutBe(uint8_t* p, uint64_t v) {
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}

// Copies n bytes without reading outside [src, src+n) and without the
// `rep movs`/`rep stos` sequences compilers emit for variable-size
// memcpy/memset, whose start-up cost dominated small messages (perf).
// Overlapping fixed-size moves cover the ragged ends.
inline void CopySmall(uint8_t* dst, const uint8_t* src, size_t n) {
  if (n >= 16) {
    size_t i = 0;
    for (; i + 16 < n; i += 16) std::memcpy(dst + i, src + i, 16);
    std::memcpy(dst + n - 16, src + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(dst, src, 8);
    std::memcpy(dst + n - 8, src + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(dst, src, 4);
    std::memcpy(dst + n - 4, src + n - 4, 4);
  } else {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
  }
}

// Overwrites n bytes in a way the compiler may not drop as a dead store.
inline void Wipe(void* p, size_t n) {
  std::memset(p, 0, n);
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

// Writes the FIPS 180-4 5.1 padding for a message whose last `rem` bytes
// (rem < B) are at `src` and whose total length (including the key block
// already hashed) is `total_bytes`, into `dst` (2*B bytes). Returns the
// number of blocks (1 or 2). LB: the length field's size (8 or 16).
template <size_t B, size_t LB>
size_t PadTail(const uint8_t* src, size_t rem, uint64_t total_bytes, uint8_t* dst) {
  const size_t blocks = rem + 1 + LB <= B ? 1 : 2;
  if (blocks == 1) {
    std::memset(dst, 0, B);  // constant sizes: plain vector stores
  } else {
    std::memset(dst, 0, 2 * B);
  }
  if (rem > 0) CopySmall(dst, src, rem);
  dst[rem] = 0x80;
  // The bit length fits 64 bits for any in-memory message; the upper 64 bits
  // of SHA-512's 128-bit length field stay zero.
  PutBe(dst + blocks * B - 8, static_cast<uint64_t>(total_bytes * 8));
  return blocks;
}

// HMAC of messages 0..n-1 through kernel `k`: message i is span_at(i), asked
// in order. When its MAC is ready (out of order) it is written to
// slot(i, scratch), which returns where it goes (the caller's output, or
// `scratch`, 64 lane-local bytes), and then done(i, mac) is called. Writing
// in place matters: copying the MAC out of a buffer just written word by
// word stalls on store forwarding (perf). inner/outer and out_len as for
// HmacSha256Batch.
//
// Each lane walks one message through three runs of blocks: the message's
// whole blocks straight from the caller's memory, then 1-2 padded tail
// blocks from a lane-local buffer (so nothing past data+len is ever read),
// then the outer hash's one block (inner digest || padding) under the outer
// state. Then the lane hands over the MAC and takes the next message, so
// lanes stay busy whatever the mix of lengths, and drain only once, at the
// end of the batch.
//
// The kernel is called for as many blocks as every busy lane can go without
// changing run, so the per-lane bookkeeping happens once per run, not once
// per block. A lane with nothing left to do hashes a busy lane's blocks and
// its result is ignored.
//
// The tail is copied when a lane gets to it, not when it takes the message:
// by then the lane has just streamed the bytes before it through the cache.
// Copying it up front read the end of every message ahead of the hardware
// prefetcher, a cache miss per message that made mixed-length batches 3x
// slower (perf, Zen 5).
template <typename W, typename SpanAt, typename Slot, typename Done>
void HmacLanes(const Kernel<W>& k, const W inner[8], const W outer[8], size_t out_len, size_t n, SpanAt&& span_at,
               Slot&& slot, Done&& done) {
  constexpr size_t B = sizeof(W) * 16, LB = sizeof(W) * 2;  // block, length field (FIPS 180-4 5.1)
  enum Run { kMessage, kTail, kOuter, kIdle };
  struct Lane {
    Run run;
    size_t left;  // blocks left in this run
    size_t msg;   // message index
    Span span;
    alignas(64) uint8_t tail[2 * B];
    alignas(64) uint8_t outer[B];  // inner digest, then constant padding
    alignas(64) uint8_t mac[64];
  };
  const size_t L = k.lanes;
  const size_t out_words = out_len / sizeof(W);
  alignas(64) W st[8 * kMaxLanes];
  const uint8_t* blk[kMaxLanes];
  Lane lanes[kMaxLanes];

  // The outer block's padding is the same for every message
  // (out_len + 1 + LB <= B): lay it out once per lane.
  for (size_t l = 0; l < L; l++) {
    std::memset(lanes[l].outer, 0, B);
    lanes[l].outer[out_len] = 0x80;
    PutBe(lanes[l].outer + B - 8, static_cast<uint64_t>((B + out_len) * 8));
  }
  auto set_state = [&](size_t l, const W* h) {
    for (size_t w = 0; w < 8; w++) st[w * L + l] = h[w];
  };
  auto digest = [&](size_t l, uint8_t* to) {
    for (size_t w = 0; w < out_words; w++) PutBe(to + w * sizeof(W), st[w * L + l]);
  };
  // Lane l's tail run: the padded last len % B bytes.
  auto to_tail = [&](size_t l) {
    Lane& ln = lanes[l];
    const size_t rem = ln.span.len % B;
    const uint8_t* src = rem > 0 ? ln.span.data + (ln.span.len - rem) : nullptr;
    ln.run = kTail;
    ln.left = PadTail<B, LB>(src, rem, static_cast<uint64_t>(ln.span.len) + B, ln.tail);
    blk[l] = ln.tail;
  };
  size_t next = 0, busy = 0;
  // Gives lane l the next message, if any.
  auto start = [&](size_t l) {
    Lane& ln = lanes[l];
    if (next == n) {
      ln.run = kIdle;
      return;
    }
    busy++;
    ln.msg = next;
    ln.span = span_at(next++);
    if (next < n) __builtin_prefetch(span_at(next).data);  // the next lane to free up starts there
    set_state(l, inner);
    if (ln.span.len >= B) {
      ln.run = kMessage, ln.left = ln.span.len / B, blk[l] = ln.span.data;
    } else {
      to_tail(l);
    }
  };
  auto end_run = [&](size_t l) {
    Lane& ln = lanes[l];
    switch (ln.run) {
      case kMessage:
        to_tail(l);
        break;
      case kTail:
        digest(l, ln.outer);
        set_state(l, outer);
        ln.run = kOuter, ln.left = 1, blk[l] = ln.outer;
        break;
      default: {  // kOuter: the MAC is done
        uint8_t* mac = slot(ln.msg, ln.mac);
        digest(l, mac);
        done(ln.msg, static_cast<const uint8_t*>(mac));
        busy--;
        start(l);
        break;
      }
    }
  };

  for (size_t l = 0; l < L; l++) start(l);
  size_t steps = SIZE_MAX, some = 0;  // blocks every busy lane can go; a busy lane
  for (size_t l = 0; l < L; l++) {
    if (lanes[l].run != kIdle && lanes[l].left < steps) steps = lanes[l].left, some = l;
  }
  while (busy > 0) {
    if (busy < L) {
      for (size_t l = 0; l < L; l++) {
        if (lanes[l].run == kIdle) blk[l] = blk[some];
      }
    }
    k.compress(st, blk, steps);
    size_t next_steps = SIZE_MAX;
    for (size_t l = 0; l < L; l++) {
      Lane& ln = lanes[l];
      if (ln.run == kIdle) continue;
      blk[l] += steps * B;
      ln.left -= steps;
      if (ln.left == 0) end_run(l);
      if (ln.run == kMessage) {
        // The two blocks after the next call's: the lanes walk up to 16
        // streams at once, and the hardware prefetcher alone left mixed-length
        // batches 40% slower than uniform ones (Zen 5; 10% with this).
        __builtin_prefetch(blk[l] + B);
        __builtin_prefetch(blk[l] + 2 * B - 1);
        __builtin_prefetch(blk[l] + 3 * B - 1);
      }
      if (ln.run != kIdle && ln.left < next_steps) next_steps = ln.left, some = l;
    }
    steps = next_steps;
  }
  // Chaining values (some were the key's) and the MACs and inner digests (a
  // verification compares against the former) do not outlive the call.
  // (Constant sizes: inline stores, not a memset call per buffer.)
  Wipe(st, sizeof st);
  for (size_t l = 0; l < L; l++) Wipe(lanes[l].mac, sizeof lanes[l].mac), Wipe(lanes[l].outer, 64);
}

}  // namespace detail
}  // namespace mb
}  // namespace kmshmac
