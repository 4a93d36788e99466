#include "thread_pool.h"

#include <algorithm>
#include <cstdlib>
#include <system_error>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif
#if !defined(_WIN32)
#include <pthread.h>
#include <signal.h>
#endif

#include "stats.h"

namespace kmshmac {
namespace {

constexpr uint64_t kSpinNs = 50'000;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

size_t PoolThreadCount() {
  if (const char* configured = std::getenv("KMS_HMAC_THREADS")) {
    const long n = std::strtol(configured, nullptr, 10);
    if (n >= 1 && n <= 256) return static_cast<size_t>(n);
  }
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<size_t>(n);
  }
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

ThreadPool* ThreadPool::Get() {
  static ThreadPool* pool = [] {
    auto* p = new ThreadPool();
#if !defined(_WIN32)
    // Signals stay with the JS threads: the pool threads start with all blocked.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
#endif
    const size_t wanted = PoolThreadCount();
    for (size_t i = 0; i < wanted; i++) {
      try {
        std::thread(&ThreadPool::Loop, p).detach();
        p->size_++;
      } catch (const std::system_error&) {
        break;  // run with the threads we got
      }
    }
#if !defined(_WIN32)
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
#endif
    return p;
  }();
  return pool->size_ > 0 ? pool : nullptr;
}

void ThreadPool::Submit(PoolJob* job, size_t chunks) {
  job->chunks_ = chunks;
  job->unfinished_.store(chunks, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(job);
    queued_.store(queue_.size(), std::memory_order_release);
  }
  for (size_t i = 0; i < std::min(chunks, size_); i++) wake_.notify_one();
}

void ThreadPool::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (queue_.empty()) {
      // Batches often come back to back (a caller awaits one, then queues
      // the next): look for one for a few tens of microseconds before going
      // to sleep, since waking a sleeping thread costs more than that (a
      // futex wake and, in a VM, an inter-processor interrupt).
      lock.unlock();
      const uint64_t until = NowNs() + kSpinNs;
      while (queued_.load(std::memory_order_acquire) == 0 && NowNs() < until) CpuRelax();
      lock.lock();
      if (queue_.empty()) wake_.wait(lock);
      continue;
    }
    PoolJob* job = queue_.front();
    const size_t chunk = job->claimed_++;
    if (job->claimed_ == job->chunks_) {
      queue_.pop_front();
      queued_.store(queue_.size(), std::memory_order_release);
    }
    lock.unlock();
    try {
      job->RunChunk(chunk);
    } catch (...) {
      job->failed_.store(true, std::memory_order_relaxed);
    }
    Add(Stats().chunks);
    if (job->unfinished_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      job->Finished(job->failed_.load(std::memory_order_relaxed));
    }
    lock.lock();
  }
}

}  // namespace kmshmac
