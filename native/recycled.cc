#include "recycled.h"

#include <algorithm>
#include <mutex>
#include <new>
#include <vector>

#include "stats.h"

namespace kmshmac {
namespace {

constexpr size_t kMinCapacity = 64 * 1024;    // small requests share one size class
constexpr size_t kMaxKept = 8;                // buffers an idle process keeps...
constexpr size_t kMaxKeptBytes = 256u << 20;  // ...and their total size

struct FreeList {
  std::mutex mutex;
  std::vector<std::pair<std::unique_ptr<uint8_t[]>, size_t>> buffers;
  size_t bytes = 0;
};

// Never destroyed: pool threads may give buffers back while the process exits.
FreeList& Free() {
  static FreeList* list = new FreeList();
  return *list;
}

}  // namespace

BatchStats& Stats() {
  static BatchStats* stats = new BatchStats();
  return *stats;
}

Recycled Recycled::Take(size_t size) {
  FreeList& free = Free();
  {
    std::lock_guard<std::mutex> lock(free.mutex);
    auto best = free.buffers.end();
    for (auto it = free.buffers.begin(); it != free.buffers.end(); ++it) {
      if (it->second >= size && (best == free.buffers.end() || it->second < best->second)) best = it;
    }
    if (best != free.buffers.end()) {
      Recycled taken(std::move(best->first), best->second, true);
      free.bytes -= best->second;
      free.buffers.erase(best);
      Add(Stats().buffers_reused);
      return taken;
    }
  }
  // Round up so batches of similar size reuse each other's buffers.
  const size_t capacity = std::max(kMinCapacity, size + size / 4);
  Add(Stats().buffers_allocated);
  return Recycled(std::unique_ptr<uint8_t[]>(new uint8_t[capacity]), capacity, false);
}

Recycled& Recycled::operator=(Recycled&& other) noexcept {
  if (this != &other) {
    Give();
    bytes_ = std::move(other.bytes_);
    capacity_ = other.capacity_;
    warm_ = other.warm_;
  }
  return *this;
}

Recycled::~Recycled() { Give(); }

void Recycled::Give() {
  if (!bytes_) return;
  FreeList& free = Free();
  std::lock_guard<std::mutex> lock(free.mutex);
  if (capacity_ <= kMaxKeptBytes) {
    // Full: keep the larger buffers, they are the expensive ones to fault in.
    while (!free.buffers.empty() && (free.buffers.size() >= kMaxKept || free.bytes + capacity_ > kMaxKeptBytes)) {
      auto smallest = std::min_element(free.buffers.begin(), free.buffers.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; });
      if (smallest->second >= capacity_) break;
      free.bytes -= smallest->second;
      free.buffers.erase(smallest);
    }
    if (free.buffers.size() < kMaxKept && free.bytes + capacity_ <= kMaxKeptBytes) {
      free.bytes += capacity_;
      free.buffers.emplace_back(std::move(bytes_), capacity_);
    }
  }
  bytes_.reset();  // not kept: freed here
  capacity_ = 0;
}

}  // namespace kmshmac
