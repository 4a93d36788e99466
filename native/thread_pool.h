// The addon's own worker threads: one per core this process may run on,
// shared by every Node.js environment (main thread and worker_threads), so
// async batches use all cores whatever libuv's pool (4 threads by default,
// shared with fs, dns and zlib) is doing. No Node-API here.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>

namespace kmshmac {

// Work the pool runs as chunks 0 .. n-1, each on whichever pool thread is
// free, so a thread slowed by other processes on its core leaves its share
// to the others.
class PoolJob {
 public:
  virtual ~PoolJob() = default;

 protected:
  // On a pool thread. An exception marks the job failed; it never escapes.
  virtual void RunChunk(size_t chunk) = 0;
  // On the pool thread that finished the last chunk. The pool never touches
  // the job again, so this may hand it off or delete it.
  virtual void Finished(bool failed) = 0;

 private:
  friend class ThreadPool;
  size_t chunks_ = 0;   // set by Submit
  size_t claimed_ = 0;  // guarded by the pool's mutex
  std::atomic<size_t> unfinished_{0};
  std::atomic<bool> failed_{false};
};

class ThreadPool {
 public:
  // The process-wide pool, started on first use; nullptr if no thread could
  // be started (the caller then runs the work itself). Never destroyed: its
  // threads may outlive any one environment.
  static ThreadPool* Get();

  size_t size() const { return size_; }
  // Queues `job`'s chunks 0 .. chunks-1 (chunks >= 1). From here on the job
  // belongs to the pool until it calls Finished().
  void Submit(PoolJob* job, size_t chunks);

 private:
  ThreadPool() = default;
  void Loop();

  size_t size_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<PoolJob*> queue_;  // jobs with unclaimed chunks, oldest first
  std::atomic<size_t> queued_{0};  // queue_.size(), readable without the mutex
};

// Threads the pool starts: KMS_HMAC_THREADS if set (1..256), else the CPUs
// this process may run on (sched_getaffinity, like os.availableParallelism()).
size_t PoolThreadCount();

}  // namespace kmshmac
