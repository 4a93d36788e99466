#include "async_batch.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "js_args.h"
#include "recycled.h"
#include "stats.h"
#include "thread_pool.h"

namespace kmshmac {
namespace {

// Work is counted in compression-function calls (HmacKey::Blocks), the unit
// that costs the same whatever the mix of message lengths. Measured on the
// development machine (docs/performance.md): handing a batch to the pool and
// settling its promise costs about what hashing ~1,000 blocks costs on the
// fastest path (SHA-NI), so
//  - below kInlineBlocks the calling thread hashes the batch itself: the
//    event loop is held for less than one hand-off would cost;
//  - a chunk is at least kMinChunkBlocks, so waking a thread for it is
//    worth it;
//  - a batch is cut into up to kChunksPerThread chunks per thread, so a
//    thread slowed by other processes on its core leaves its share to the
//    others instead of holding up the promise.
constexpr size_t kInlineBlocks = 1024;
constexpr size_t kMinChunkBlocks = 1024;
constexpr size_t kChunksPerThread = 4;

// Per Node.js environment (the main thread, each worker_thread): the
// threadsafe function that brings finished batches back to its JS thread.
struct EnvState {
  napi_threadsafe_function tsfn = nullptr;
  size_t pending = 0;  // JS thread only: batches not yet settled; the tsfn keeps the loop alive while > 0

  // Batches the pool threads may still touch. At environment teardown the
  // cleanup hook waits for them: they write into ArrayBuffers of this
  // environment, and call its threadsafe function when done.
  std::mutex mutex;
  std::condition_variable idle;
  size_t running = 0;

  void Enter(napi_env env) {
    if (pending++ == 0) napi_ref_threadsafe_function(env, tsfn);
    std::lock_guard<std::mutex> lock(mutex);
    running++;
  }
  void Leave(napi_env env) {
    if (--pending == 0) napi_unref_threadsafe_function(env, tsfn);
  }
  void PoolDone() {
    std::lock_guard<std::mutex> lock(mutex);
    if (--running == 0) idle.notify_all();
  }
  static void WaitForPool(void* data) {
    auto* state = static_cast<EnvState*>(data);
    std::unique_lock<std::mutex> lock(state->mutex);
    state->idle.wait(lock, [state] { return state->running == 0; });
  }
};

void SettleOnJsThread(napi_env env, napi_value, void* context, void* data);

void DeleteEnvState(napi_env, void* data, void*) { delete static_cast<EnvState*>(data); }

EnvState* GetEnvState(Napi::Env env) {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) == napi_ok && data != nullptr) return static_cast<EnvState*>(data);
  auto state = std::make_unique<EnvState>();
  napi_value name = Napi::String::New(env, "kms-hmac:batch");
  // Deleted by the threadsafe function's finalizer, when Node closes it at teardown.
  if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, state.get(), DeleteEnvState, state.get(),
                                      SettleOnJsThread, &state->tsfn) != napi_ok) {
    throw Napi::Error::New(env, "kms-hmac: cannot create the async batch channel");
  }
  EnvState* raw = state.release();
  napi_unref_threadsafe_function(env, raw->tsfn);
  // Registered after the threadsafe function, so it runs before Node's own
  // hook closes that function (hooks run last-in, first-out).
  napi_add_env_cleanup_hook(env, EnvState::WaitForPool, raw);
  napi_set_instance_data(env, raw, nullptr, nullptr);
  return raw;
}

// The output of a batch: a new ArrayBuffer (hidden from JS until the promise
// resolves, so the pool threads write it directly), or the caller's
// Uint8Array (written on the JS thread at settlement, after checking it is
// still attached and large enough: JS may detach or shrink it meanwhile).
size_t OutputLength(const HmacKey& key, const PackedBatch& batch) {
  return batch.macs != nullptr ? batch.count : batch.count * key.mac_length;
}

const char* OutputName(const PackedBatch& batch) { return batch.macs != nullptr ? "results" : "out"; }

// Hashes the whole batch on the calling thread and returns a settled promise.
Napi::Value RunInline(Napi::Env env, const HmacKey& key, const PackedBatch& batch, Napi::Value out) {
  const size_t length = OutputLength(key, batch);
  Napi::Value result = out;
  uint8_t* target;
  if (out.IsUndefined()) {
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, length);
    target = static_cast<uint8_t*>(buffer.Data());
    result = Napi::Uint8Array::New(env, length, buffer, 0);
  } else {
    target = GetOutput(out, length, OutputName(batch)).data;
  }
  if (batch.macs != nullptr) VerifyAll(key, batch, target); else MacAll(key, batch, target);
  Add(Stats().inline_batches);
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  deferred.Resolve(result);
  return deferred.Promise();
}

class AsyncBatch final : public PoolJob {
 public:
  // Holds on to nothing the caller owns: everything the pool threads read is
  // copied into `inputs_` first. `blocks` is the batch's work (about).
  static Napi::Value Start(Napi::Env env, ThreadPool* pool, const HmacKey& key, const PackedBatch& batch,
                           Napi::Value out, size_t blocks);

  ~AsyncBatch() override { key_.Wipe(); }

  void Settle(Napi::Env env);

 protected:
  void RunChunk(size_t chunk) override;
  void Finished(bool failed) override;

 private:
  AsyncBatch(const HmacKey& key, const PackedBatch& batch)
      : key_(key), verify_(batch.macs != nullptr), count_(batch.count) {}

  // Copies the offsets (rebased to 0) and cuts the messages into chunks of
  // about equal work, in one pass: up to kChunksPerThread per thread, none
  // (but the last) under kMinChunkBlocks.
  void CopyOffsetsAndCut(const PackedBatch& batch, uint32_t* offsets, size_t blocks, size_t threads);

  HmacKey key_;  // the batch's own copy: destroy() during the batch is safe
  const bool verify_;
  const size_t count_;
  std::vector<size_t> cuts_;        // chunk c is messages [cuts_[c], cuts_[c+1])
  Recycled inputs_;                 // offsets | MACs (verify) | data | results (caller's output)
  const uint32_t* offsets_ = nullptr;
  const uint8_t* macs_ = nullptr;
  const uint8_t* data_ = nullptr;
  uint8_t* out_ = nullptr;
  size_t out_length_ = 0;
  bool caller_out_ = false;
  bool failed_ = false;
  EnvState* state_ = nullptr;
  napi_ref out_ref_ = nullptr;  // the new ArrayBuffer, or the caller's Uint8Array
  napi_deferred deferred_ = nullptr;
  uint64_t queued_ns_ = 0;
  std::atomic<uint64_t> first_start_ns_{0};
  uint64_t finished_ns_ = 0;
};

void AsyncBatch::CopyOffsetsAndCut(const PackedBatch& batch, uint32_t* offsets, size_t blocks, size_t threads) {
  const size_t most = std::max<size_t>(1, std::min(threads * kChunksPerThread, blocks / kMinChunkBlocks));
  const size_t target = (blocks + most - 1) / most;
  const uint32_t first = batch.offsets[0];
  cuts_.reserve(most + 2);
  cuts_.push_back(0);
  size_t work = 0;
  offsets[0] = 0;
  for (size_t i = 0; i < count_; i++) {
    const uint32_t end = batch.offsets[i + 1];
    offsets[i + 1] = end - first;
    work += key_.Blocks(end - batch.offsets[i]);
    if (work >= target && i + 1 < count_ && cuts_.size() < most) {
      cuts_.push_back(i + 1);
      work = 0;
    }
  }
  cuts_.push_back(count_);
}

Napi::Value AsyncBatch::Start(Napi::Env env, ThreadPool* pool, const HmacKey& key, const PackedBatch& batch,
                              Napi::Value out, size_t blocks) {
  const uint64_t called_ns = NowNs();
  std::unique_ptr<AsyncBatch> job(new AsyncBatch(key, batch));
  const size_t count = batch.count;
  const uint32_t first = batch.offsets[0];
  const size_t data_length = batch.offsets[count] - first;
  const size_t offsets_length = (count + 1) * sizeof(uint32_t);
  const size_t macs_length = job->verify_ ? count * key.mac_length : 0;
  job->out_length_ = OutputLength(key, batch);
  job->caller_out_ = !out.IsUndefined();
  if (job->caller_out_) GetOutput(out, job->out_length_, OutputName(batch));  // fail now, not at settlement

  try {
    job->inputs_ = Recycled::Take(offsets_length + macs_length + data_length + (job->caller_out_ ? job->out_length_ : 0));
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "kms-hmac: out of memory for the async batch copy");
  }
  uint8_t* at = job->inputs_.data();
  auto* offsets = reinterpret_cast<uint32_t*>(at);
  uint8_t* macs = at + offsets_length;
  uint8_t* data = macs + macs_length;
  job->offsets_ = offsets;
  job->macs_ = macs;
  job->data_ = data;

  Napi::Value target = out;
  if (job->caller_out_) {
    job->out_ = data + data_length;
  } else {
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, job->out_length_);
    job->out_ = static_cast<uint8_t*>(buffer.Data());
    target = buffer;
  }
  job->state_ = GetEnvState(env);
  napi_value promise = nullptr;
  if (napi_create_reference(env, target, 1, &job->out_ref_) != napi_ok ||
      napi_create_promise(env, &job->deferred_, &promise) != napi_ok) {
    if (job->out_ref_ != nullptr) napi_delete_reference(env, job->out_ref_);
    throw Napi::Error::New(env, "kms-hmac: cannot start the async batch");
  }
  // From here on nothing throws: the pool has the job, and settles its promise.
  job->state_->Enter(env);

  job->CopyOffsetsAndCut(batch, offsets, blocks, pool->size());
  std::memcpy(data, batch.data + first, data_length);
  if (macs_length) std::memcpy(macs, batch.macs, macs_length);
  const size_t copied = offsets_length + macs_length + data_length;
  AsyncBatch* raw = job.release();
  raw->queued_ns_ = NowNs();
  Add(Stats().pool_batches);
  Add(Stats().bytes_copied, copied);
  Add(Stats().copy_ns, raw->queued_ns_ - called_ns);
  pool->Submit(raw, raw->cuts_.size() - 1);  // `raw` may be finished from here on: not touched again
  return Napi::Value(env, promise);
}

void AsyncBatch::RunChunk(size_t chunk) {
  uint64_t expected = 0;
  first_start_ns_.compare_exchange_strong(expected, NowNs(), std::memory_order_relaxed);
  const SpanList messages = SpanList::Packed(data_, offsets_, count_);
  const size_t begin = cuts_[chunk], end = cuts_[chunk + 1];
  if (verify_) {
    VerifyRange(key_, messages, MacList::Strided(macs_, key_.mac_length), begin, end, out_);
  } else {
    MacRange(key_, messages, begin, end, out_);
  }
}

void AsyncBatch::Finished(bool failed) {
  failed_ = failed;
  finished_ns_ = NowNs();
  EnvState* state = state_;  // `this` may be settled and deleted as soon as it is queued
  if (napi_call_threadsafe_function(state->tsfn, this, napi_tsfn_nonblocking) != napi_ok) {
    delete this;  // the environment is closing: nobody is waiting for the promise
  }
  state->PoolDone();
}

void AsyncBatch::Settle(Napi::Env env) {
  const uint64_t settle_ns = NowNs();
  Napi::HandleScope scope(env);
  state_->Leave(env);
  napi_value target = nullptr;
  napi_get_reference_value(env, out_ref_, &target);
  napi_delete_reference(env, out_ref_);
  out_ref_ = nullptr;
  Napi::Value result;
  Napi::Value error;
  try {
    if (failed_) {
      error = Napi::Error::New(env, "kms-hmac: the async batch failed on a worker thread").Value();
    } else if (caller_out_) {
      // JS ran since the call: the caller's buffer may be detached or shrunk.
      const Bytes dest = GetOutput(Napi::Value(env, target), out_length_, verify_ ? "results" : "out");
      std::memcpy(dest.data, out_, out_length_);
      result = Napi::Value(env, target);
    } else {
      result = Napi::Uint8Array::New(env, out_length_, Napi::Value(env, target).As<Napi::ArrayBuffer>(), 0);
    }
  } catch (const Napi::Error& e) {
    error = e.Value();
  }
  if (error.IsEmpty()) {
    napi_resolve_deferred(env, deferred_, result);
  } else {
    napi_reject_deferred(env, deferred_, error);
  }
  BatchStats& stats = Stats();
  const uint64_t start = first_start_ns_.load(std::memory_order_relaxed);
  Add(stats.start_ns, start - queued_ns_);
  Add(stats.hash_ns, finished_ns_ - start);
  Add(stats.return_ns, settle_ns - finished_ns_);
  Add(stats.settle_ns, NowNs() - settle_ns);
}

void SettleOnJsThread(napi_env env, napi_value, void*, void* data) {
  auto* job = static_cast<AsyncBatch*>(data);
  if (env != nullptr) job->Settle(Napi::Env(env));
  delete job;  // env == nullptr: the environment is closing, the promise with it
}

}  // namespace

Napi::Value StartBatch(Napi::Env env, const HmacKey& key, const PackedBatch& batch, Napi::Value out) {
  // The work, from the byte count: exact up to each message's padding
  // rounding (half a block on average), and no pass over the offsets.
  const size_t block = BlockLength(key.alg);
  const size_t data_length = batch.offsets[batch.count] - batch.offsets[0];
  const size_t blocks = (data_length + batch.count * (block / 8 + 1)) / block + batch.count * 3 / 2;
  ThreadPool* pool = blocks >= kInlineBlocks ? ThreadPool::Get() : nullptr;
  if (pool == nullptr) return RunInline(env, key, batch, out);
  return AsyncBatch::Start(env, pool, key, batch, out, blocks);
}

Napi::Value BatchStatsObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const BatchStats& s = Stats();
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* name, const std::atomic<uint64_t>& value) {
    o.Set(name, Napi::Number::New(env, static_cast<double>(value.load(std::memory_order_relaxed))));
  };
  set("inlineBatches", s.inline_batches);
  set("poolBatches", s.pool_batches);
  set("chunks", s.chunks);
  set("bytesCopied", s.bytes_copied);
  set("buffersReused", s.buffers_reused);
  set("buffersAllocated", s.buffers_allocated);
  set("copyNs", s.copy_ns);
  set("startNs", s.start_ns);
  set("hashNs", s.hash_ns);
  set("returnNs", s.return_ns);
  set("settleNs", s.settle_ns);
  o.Set("threads", Napi::Number::New(env, static_cast<double>(PoolThreadCount())));
  return o;
}

}  // namespace kmshmac
