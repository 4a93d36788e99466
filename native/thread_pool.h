// The addon's own worker threads: one per core this process may run on,
// shared by every Node.js environment (main thread and worker_threads), so
// async batches use all cores whatever libuv's pool (4 threads by default,
// shared with fs, dns and zlib) is doing. No Node-API here.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>

#if defined(__linux__)
#include <pthread.h>
#endif

namespace kmshmac {

// Work the pool runs: the job hands out its own units (Work), so it can
// publish them while it is still being prepared, and any number of pool
// threads may be in it at once.
//
// Lifetime: the job counts holds on itself: one for the pool's queue, one
// per pool thread inside Work(), and whatever its submitter keeps (Hold()
// before Submit, Release() when done preparing). Whoever drops the last
// hold calls Finished(); nobody touches the job after that.
class PoolJob {
 public:
  virtual ~PoolJob() = default;

  void Hold() { holds_.fetch_add(1, std::memory_order_relaxed); }
  // Whether the caller's hold is the only one (and it sees everything the
  // other holders did before they let go).
  bool SoleHolder() const { return holds_.load(std::memory_order_acquire) == 1; }
  // The last hold released calls Finished(): `this` may be gone after.
  void Release() {
    if (holds_.fetch_sub(1, std::memory_order_acq_rel) == 1) Finished(failed_.load(std::memory_order_relaxed));
  }

 protected:
  // On a pool thread: runs units until none is left to take. An exception
  // escaping it marks the job failed.
  virtual void Work() = 0;
  // Whether every unit has been taken (the pool then drops the job).
  virtual bool Exhausted() const = 0;
  // Once, when the last hold is released: every unit has run. `failed`:
  // Fail() was called, or Work() threw.
  virtual void Finished(bool failed) = 0;
  void Fail() { failed_.store(true, std::memory_order_relaxed); }

 private:
  friend class ThreadPool;
  std::atomic<size_t> holds_{0};
  std::atomic<bool> failed_{false};
  bool queued_ = false;      // guarded by the pool's mutex
  PoolJob* next_ = nullptr;  // the pool's queue (guarded by its mutex)
};

class ThreadPool {
 public:
  // The process-wide pool, started on first use; nullptr if no thread could
  // be started (the caller then runs the work itself). Never destroyed: its
  // threads may outlive any one environment.
  static ThreadPool* Get();

  size_t size() const { return size_; }

  // Queues `job` (which takes a hold for the queue) and makes sure `threads`
  // pool threads are awake to take it (spinning ones first).
  void Submit(PoolJob* job, size_t threads);
  // Wakes sleeping threads until `threads` are awake (or all are).
  void Wake(size_t threads);
  // Drops `job` from the queue (and the queue's hold) if every unit is
  // taken, so a submitter that took the last ones need not wait for a pool
  // thread to come by.
  void Retire(PoolJob* job);

 private:
  ThreadPool() = default;
  void Loop();
  void WakeLocked(size_t threads, std::unique_lock<std::mutex>& lock);
  // A thread done with `job`: retires it, and drops its own hold.
  void Leave(PoolJob* job);
  // Under the mutex: takes `job` off the queue if it is queued and exhausted.
  bool Dequeue(PoolJob* job);

  size_t size_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  // Jobs with units still to take, oldest first. Pool threads work on the
  // oldest; a submitter may also finish its own job further back.
  PoolJob* head_ = nullptr;
  PoolJob* tail_ = nullptr;
  size_t sleeping_ = 0;              // threads waiting on wake_ (guarded by mutex_)
  size_t waking_ = 0;                // notified, not yet back from the wait (guarded by mutex_)
  std::atomic<bool> queued_{false};  // head_ != nullptr, readable without the mutex
};

// cv.wait(lock). On glibc with libstdc++ it calls pthread_cond_wait on the
// handle itself, as libstdc++ does: GCC 12's libstdc++ exports
// condition_variable::wait under a new version (GLIBCXX_3.4.30), which the
// libstdc++ of GCC 11 systems (RHEL 9, Amazon Linux 2023) lacks, so a
// prebuild calling it would not load there (docs/release.md).
inline void WaitOn(std::condition_variable& cv, std::unique_lock<std::mutex>& lock) {
#if defined(__linux__) && defined(__GLIBCXX__)
  pthread_cond_wait(cv.native_handle(), lock.mutex()->native_handle());
#else
  cv.wait(lock);
#endif
}

// A pause for a thread waiting on another core (spin-wait hint).
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Threads the pool starts: KMS_HMAC_THREADS if set (1..256), else the CPUs
// this process may run on (sched_getaffinity, like os.availableParallelism()).
size_t PoolThreadCount();

}  // namespace kmshmac
