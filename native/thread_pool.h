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

// Work the pool runs as chunks 0 .. chunks()-1. Chunks become runnable in
// order as their inputs are in place (Submit/Publish), so pool threads can
// start on the first chunk while the caller still copies the rest.
class PoolJob {
 public:
  explicit PoolJob(size_t chunks) : chunks_(chunks), unfinished_(chunks) {}
  virtual ~PoolJob() = default;
  size_t chunks() const { return chunks_; }

 protected:
  // On a pool thread. An exception marks the job failed; it never escapes.
  virtual void RunChunk(size_t chunk) = 0;
  // On the pool thread that finished the last chunk. The pool never touches
  // the job again, so this may hand it off or delete it.
  virtual void Finished(bool failed) = 0;

 private:
  friend class ThreadPool;
  const size_t chunks_;
  size_t claimed_ = 0;  // guarded by the pool's mutex
  size_t ready_ = 0;    // guarded by the pool's mutex
  std::atomic<size_t> unfinished_;
  std::atomic<bool> failed_{false};
};

class ThreadPool {
 public:
  // The process-wide pool, started on first use; nullptr if no thread could
  // be started (the caller then runs the work itself). Never destroyed: its
  // threads may outlive any one environment.
  static ThreadPool* Get();

  size_t size() const { return size_; }
  // Queues `job` with chunks [0, ready) runnable.
  void Submit(PoolJob* job, size_t ready);
  // Makes chunks [0, ready) of a queued job runnable.
  void Publish(PoolJob* job, size_t ready);

 private:
  ThreadPool() = default;
  void Loop();

  size_t size_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<PoolJob*> queue_;  // jobs with unclaimed chunks, oldest first
};

// Threads the pool starts: KMS_HMAC_THREADS if set (1..256), else the CPUs
// this process may run on (sched_getaffinity, like os.availableParallelism()).
size_t PoolThreadCount();

}  // namespace kmshmac
