// Counters for the async batch path, read by bench/run.js through the
// addon's batchStats(): how many copies and allocations a batch costs and
// where its wall time goes (docs/performance.md, "per-batch budget").
// Relaxed atomics: a handful of increments per batch, never per message.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace kmshmac {

struct BatchStats {
  std::atomic<uint64_t> inline_batches{0};     // small enough to run on the calling thread
  std::atomic<uint64_t> pool_batches{0};       // run on the pool threads
  std::atomic<uint64_t> settled_in_call{0};    // pool batches the calling thread helped with, ended and settled
  std::atomic<uint64_t> chunks{0};             // pool chunks run
  std::atomic<uint64_t> bytes_copied{0};       // input bytes copied into recycled memory
  std::atomic<uint64_t> buffers_reused{0};     // Recycled::Take served from the free list
  std::atomic<uint64_t> buffers_allocated{0};  // Recycled::Take had to allocate
  // Nanoseconds, summed over pool batches:
  std::atomic<uint64_t> copy_ns{0};    // calling thread: checking arguments done, copying inputs, until queued
  std::atomic<uint64_t> start_ns{0};   // queued (waking the threads) until a pool thread starts the first chunk
  std::atomic<uint64_t> hash_ns{0};    // first chunk started until the last chunk finished
  std::atomic<uint64_t> return_ns{0};  // last chunk finished until the JS thread picks the batch up
  std::atomic<uint64_t> settle_ns{0};  // JS thread: writing the output and resolving the promise
};

BatchStats& Stats();

inline void Add(std::atomic<uint64_t>& counter, uint64_t amount = 1) {
  counter.fetch_add(amount, std::memory_order_relaxed);
}

inline uint64_t NowNs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

}  // namespace kmshmac
