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

// How long a thread that runs out of work looks for the next job before it
// sleeps. Batches tend to come back to back (a caller awaits one, then
// queues the next), and waking a sleeping thread costs more than this in a
// VM (a futex wake and an inter-processor interrupt). The look pauses on the
// core rather than yielding it: on a busy machine a yielded core goes to
// another process until the next scheduler tick, and the batch that comes
// microseconds later finds no thread of the pool running (measured, 2 vCPUs
// under load, back-to-back batches from shared memory: 1,024 x 64 B 0.97x ->
// 1.27x the sync call, and no more rounds at ~1.0x at 4,096 x 64 B). And
// every thread looks, not all but one: the second thread of a large batch
// then comes in without a wake-up (16,384 x 64 B 1.58x -> 1.64x, 4,096 x
// 1 KiB 1.83x -> 1.90x, same-process A/B).
constexpr uint64_t kSpinNs = 50'000;

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

void ThreadPool::Submit(PoolJob* job, size_t threads) {
  job->Hold();  // the queue's
  std::unique_lock<std::mutex> lock(mutex_);
  job->queued_ = true;
  job->next_ = nullptr;
  (tail_ != nullptr ? tail_->next_ : head_) = job;
  tail_ = job;
  queued_.store(true, std::memory_order_release);
  WakeLocked(threads, lock);
}

void ThreadPool::Wake(size_t threads) {
  std::unique_lock<std::mutex> lock(mutex_);
  WakeLocked(threads, lock);
}

void ThreadPool::WakeLocked(size_t threads, std::unique_lock<std::mutex>& lock) {
  // Threads busy elsewhere, spinning or already woken need no wake-up.
  const size_t awake = size_ - sleeping_ + waking_;
  size_t wake = 0;
  if (threads > awake) wake = std::min(threads - awake, sleeping_ - waking_);
  waking_ += wake;
  lock.unlock();
  for (size_t i = 0; i < wake; i++) wake_.notify_one();
}

void ThreadPool::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  bool looked = false;  // looked for work since the last job: next time, sleep
  for (;;) {
    if (head_ == nullptr) {
      // Every thread looks for work before it sleeps (kSpinNs). The JS
      // thread that settles this batch and starts the next takes a core from
      // one of them (a woken thread preempts a looking one), which is then
      // runnable, not asleep, when that next batch comes.
      if (!looked) {
        lock.unlock();
        const uint64_t until = NowNs() + kSpinNs;
        while (!queued_.load(std::memory_order_acquire) && NowNs() < until) CpuRelax();
        lock.lock();
        looked = true;
        continue;
      }
      sleeping_++;
      WaitOn(wake_, lock);
      sleeping_--;
      if (waking_ > 0) waking_--;
      looked = false;
      continue;
    }
    looked = false;
    PoolJob* job = head_;
    job->Hold();  // this thread's, while it is inside
    lock.unlock();
    try {
      job->Work();
    } catch (...) {
      job->Fail();
    }
    Leave(job);
    lock.lock();
  }
}

bool ThreadPool::Dequeue(PoolJob* job) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!job->queued_ || !job->Exhausted()) return false;
  // Usually the front; not when its submitter took its last units while an
  // older job was still queued.
  PoolJob* before = nullptr;
  for (PoolJob* at = head_; at != job; at = at->next_) before = at;
  (before != nullptr ? before->next_ : head_) = job->next_;
  if (tail_ == job) tail_ = before;
  queued_.store(head_ != nullptr, std::memory_order_release);
  job->queued_ = false;
  return true;
}

void ThreadPool::Retire(PoolJob* job) {
  if (Dequeue(job)) job->Release();  // the queue's hold (never the last: the caller holds one)
}

void ThreadPool::Leave(PoolJob* job) {
  Retire(job);
  job->Release();  // this thread's: `job` may be gone from here on
}

}  // namespace kmshmac
