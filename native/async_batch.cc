#include "async_batch.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

#include "js_args.h"
#include "mb/mb_dispatch.h"
#include "recycled.h"
#include "stats.h"
#include "thread_pool.h"

namespace kmshmac {
namespace {

// Thresholds in time, not in blocks or bytes, so they mean the same on every
// CPU: a batch's hashing time comes from the cost model native/mb calibrated
// on this CPU (mb::PredictNs), whose cost per block differs from CPU to CPU
// by 5x and more (SHA-NI, AVX-512 lanes or neither).
//  - Below kInlineNs the calling thread hashes the batch itself: the event
//    loop is held for less than a hand-off to the pool and back would take.
//  - The pool's work comes in units of about kUnitNs: short enough that
//    threads finish together (a thread that draws the last unit keeps the
//    promise waiting for at most one unit), long enough that taking a unit
//    (an atomic, the lanes' fill and drain) stays under 2% of it.
//  - A batch whose share per thread is under kCallerShareNs is hashed by the
//    calling thread too, as one of the threads (it wakes one pool thread
//    less), and settled in the call when the calling thread ends it. Such a
//    batch would otherwise spend a good part of its time in the hand-off
//    back to the JS thread (a libuv wake-up: tens of microseconds, more in a
//    VM), and the event loop is held no longer than by a small sync call.
constexpr double kInlineNs = 25'000;
constexpr double kUnitNs = 20'000;
constexpr double kCallerShareNs = 250'000;

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
    while (state->running != 0) WaitOn(state->idle, lock);
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
  if (batch.macs != nullptr) VerifyAll(key, batch, target);
  else MacAll(key, batch, target);
  Add(Stats().inline_batches);
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  deferred.Resolve(result);
  return deferred.Promise();
}

class AsyncBatch final : public PoolJob {
 public:
  // What the pool threads read comes from two places. ArrayBuffer inputs
  // (which JS may detach, resize or rewrite once the call returns) are
  // copied into `inputs_` first, unit by unit, each unit handed to the
  // threads as soon as it is in place. Shared memory (which cannot be
  // detached, and only grows) is read and written in place, pinned by a
  // reference until the batch settles; its lengths were read once, and the
  // offsets are always our own copy, so a racing writer changes bytes, never
  // bounds. A shared output that overlaps an input read in place gets its
  // results through `inputs_` instead, as if every input were read first.
  // `unit_bytes`: the work of a unit, in bytes of compression input (WorkBytes).
  // `caller_helps`: the calling thread hashes units too (see kCallerShareNs).
  static Napi::Value Start(Napi::Env env, ThreadPool* pool, const HmacKey& key, const JsBatch& batch, Napi::Value out,
                           size_t unit_bytes, bool caller_helps);

  ~AsyncBatch() override { key_.Wipe(); }

  void Settle(Napi::Env env);
  // Drops the references to the caller's memory (JS thread).
  void Unpin(Napi::Env env);

 protected:
  void Work() override;
  bool Exhausted() const override {
    return copied_.load(std::memory_order_acquire) &&
           next_.load(std::memory_order_acquire) >= ready_.load(std::memory_order_acquire);
  }
  void Finished(bool failed) override;

 private:
  // Messages [begin, end): about kUnitNs of work.
  struct Unit {
    size_t begin, end;
  };

  AsyncBatch(const HmacKey& key, const PackedBatch& batch)
      : key_(key), verify_(batch.macs != nullptr), count_(batch.count) {}

  // JS thread: cuts the batch into units and publishes each one as soon as
  // its offsets are in `offsets_`, and its data and MACs at `data_to` and
  // `macs_to` (nullptr: read in place, not copied).
  void CopyAndPublish(const PackedBatch& batch, size_t unit_bytes, uint8_t* data_to, uint8_t* macs_to);
  // Takes and runs the next published unit; false when none is left to take.
  bool RunNextUnit();
  void RunUnit(size_t u);
  // JS thread, after the copy: runs units as one of the threads, for a
  // bounded time. Returns true when it ended the job (every unit has run
  // and nobody else holds it): the caller settles it then. Otherwise its
  // hold is still to release, and the pool settles the job.
  bool HelpAndEnd(ThreadPool* pool);

  HmacKey key_;  // the batch's own copy: destroy() during the batch is safe
  const bool verify_;
  const size_t count_;
  Recycled inputs_;  // offsets | MACs (verify, copied) | data (copied) | results (to copy into the caller's output)
  uint32_t* offsets_ = nullptr;  // rebased: message i is data_[offsets_[i] .. offsets_[i+1])
  const uint8_t* macs_ = nullptr;
  const uint8_t* data_ = nullptr;
  uint8_t* out_ = nullptr;
  size_t out_length_ = 0;
  bool caller_out_ = false;
  bool out_in_place_ = false;    // out_ is the caller's shared output itself
  napi_ref pins_[2] = {};        // shared inputs read in place (data, MACs)
  bool failed_ = false;          // set by Finished(), read by Settle()
  bool settle_in_call_ = false;  // the calling thread ends the job and settles it itself
  std::unique_ptr<Unit[]> units_;
  std::atomic<size_t> ready_{0};     // units[0, ready_) are copied and may run
  std::atomic<size_t> next_{0};      // the next unit to take (<= ready_)
  std::atomic<bool> copied_{false};  // every unit is published: ready_ is final
  EnvState* state_ = nullptr;
  napi_ref out_ref_ = nullptr;  // the new ArrayBuffer, or the caller's Uint8Array
  napi_deferred deferred_ = nullptr;
  uint64_t queued_ns_ = 0;
  std::atomic<uint64_t> first_start_ns_{0};
  uint64_t finished_ns_ = 0;
};

// The work of messages, in bytes of compression input: a message of `length`
// bytes costs about length + MessageOverhead(block) (its padding, half a
// block of rounding on average, and the outer hash's block). So units are cut
// from the offsets alone, with no pass over the messages: a binary search
// for each unit's end.
size_t MessageOverhead(size_t block) { return 1 + block / 8 + block + block / 2; }
size_t WorkBytes(size_t block, size_t count, size_t data_length) {
  return data_length + count * MessageOverhead(block);
}

void AsyncBatch::CopyAndPublish(const PackedBatch& batch, size_t unit_bytes, uint8_t* data_to, uint8_t* macs_to) {
  const size_t overhead = MessageOverhead(BlockLength(key_.alg));
  const uint32_t* offsets = batch.offsets;
  const uint32_t first = offsets[0];
  const size_t ml = key_.mac_length;
  // Work, in bytes, of messages [b, j).
  auto work = [&](size_t b, size_t j) { return size_t(offsets[j] - offsets[b]) + (j - b) * overhead; };
  offsets_[0] = 0;
  size_t u = 0;
  for (size_t b = 0; b < count_;) {
    // The first j whose work from b reaches a unit (or the end)...
    size_t lo = b + 1, hi = count_;
    while (lo < hi) {
      const size_t mid = lo + (hi - lo) / 2;
      if (work(b, mid) >= unit_bytes) hi = mid;
      else lo = mid + 1;
    }
    // ...rounded up to a multiple of the widest lane count, unless that adds
    // more than half a unit (long messages): a unit whose last group of
    // messages fills only some of the lanes pays for all of them (measured:
    // 4,096 x 1 KiB, ~73 messages a unit: 1.45-1.66x -> 1.70-1.78x).
    const size_t rounded = std::min(count_, (lo + mb::kMaxLanes - 1) / mb::kMaxLanes * mb::kMaxLanes);
    const size_t e = work(b, rounded) <= unit_bytes + unit_bytes / 2 ? rounded : lo;
    for (size_t i = b + 1; i <= e; i++) offsets_[i] = offsets[i] - first;
    if (data_to != nullptr)
      std::memcpy(data_to + (offsets[b] - first), batch.data + offsets[b], offsets[e] - offsets[b]);
    if (macs_to != nullptr) std::memcpy(macs_to + b * ml, batch.macs + b * ml, (e - b) * ml);
    units_[u] = {b, e};
    ready_.store(++u, std::memory_order_release);
    b = e;
  }
  copied_.store(true, std::memory_order_release);
}

Napi::Value AsyncBatch::Start(Napi::Env env, ThreadPool* pool, const HmacKey& key, const JsBatch& batch,
                              Napi::Value out, size_t unit_bytes, bool caller_helps) {
  const uint64_t called_ns = NowNs();
  const PackedBatch& spans = batch.spans;
  std::unique_ptr<AsyncBatch> job(new AsyncBatch(key, spans));
  const size_t count = spans.count;
  const size_t first = spans.offsets[0];
  const size_t data_length = spans.offsets[count] - first;
  const bool copy_data = !batch.data_shared;
  const bool copy_macs = job->verify_ && !batch.macs_shared;
  const size_t offsets_length = (count + 1) * sizeof(uint32_t);
  const size_t macs_length = copy_macs ? count * key.mac_length : 0;
  const size_t data_copy = copy_data ? data_length : 0;
  job->out_length_ = OutputLength(key, spans);
  job->caller_out_ = !out.IsUndefined();
  if (job->caller_out_) {
    const Bytes caller = GetOutput(out, job->out_length_, OutputName(spans));  // fail now, not at settlement
    // Shared: written in place by the pool threads, unless that could change
    // an input still to be read (the offsets are our copy: only data and MACs).
    job->out_in_place_ = caller.shared && !spans.Overlaps(caller.data, job->out_length_, key.mac_length);
    if (job->out_in_place_) job->out_ = caller.data;
  }
  const size_t results_copy = job->caller_out_ && !job->out_in_place_ ? job->out_length_ : 0;

  // Every unit but the last has at least a unit's work: this many at most.
  const size_t units = WorkBytes(BlockLength(key.alg), count, data_length) / unit_bytes + 1;
  try {
    job->units_.reset(new Unit[units]);
    job->inputs_ = Recycled::Take(offsets_length + macs_length + data_copy + results_copy);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "kms-hmac: out of memory for the async batch copy");
  }
  uint8_t* at = job->inputs_.data();
  job->offsets_ = reinterpret_cast<uint32_t*>(at);
  uint8_t* const macs_to = copy_macs ? at + offsets_length : nullptr;
  uint8_t* const data_to = copy_data ? at + offsets_length + macs_length : nullptr;
  job->macs_ = copy_macs ? macs_to : spans.macs;
  job->data_ = copy_data ? data_to : spans.data + first;
  if (results_copy != 0) job->out_ = at + offsets_length + macs_length + data_copy;

  Napi::Value target = out;
  if (!job->caller_out_) {
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, job->out_length_);
    job->out_ = static_cast<uint8_t*>(buffer.Data());
    target = buffer;
  }
  job->state_ = GetEnvState(env);
  napi_value promise = nullptr;
  const bool pinned =
      (!batch.data_shared || napi_create_reference(env, batch.data_value, 1, &job->pins_[0]) == napi_ok) &&
      (copy_macs || !job->verify_ || napi_create_reference(env, batch.macs_value, 1, &job->pins_[1]) == napi_ok);
  if (!pinned || napi_create_reference(env, target, 1, &job->out_ref_) != napi_ok ||
      napi_create_promise(env, &job->deferred_, &promise) != napi_ok) {
    job->Unpin(env);
    throw Napi::Error::New(env, "kms-hmac: cannot start the async batch");
  }
  // From here on nothing throws: the pool has the job, and settles its promise.
  job->state_->Enter(env);
  AsyncBatch* raw = job.release();
  raw->Hold();  // this thread's, while it copies
  raw->queued_ns_ = NowNs();
  // The threads start on the first units while this thread copies the rest.
  // Every thread is woken now, so their wake-up (tens of microseconds in a
  // VM) overlaps the copy; all but one when this thread will hash too. Not
  // into fresh memory: there the copy is page faults, and each fault costs
  // more while another thread of the process runs (TLB shootdowns; 2x in a
  // VM, measured), so the threads wait for the copy.
  const bool pipelined = raw->inputs_.warm();
  if (pipelined) pool->Submit(raw, pool->size() - (caller_helps ? 1 : 0));
  raw->CopyAndPublish(spans, unit_bytes, data_to, macs_to);
  // As many threads as there are units left to take (those in it are
  // awake), one less when this thread is one of them.
  const size_t left = raw->ready_.load(std::memory_order_relaxed) - raw->next_.load(std::memory_order_relaxed);
  const size_t threads = std::min(pool->size() - (caller_helps ? 1 : 0), left);
  if (pipelined) pool->Wake(threads);
  else pool->Submit(raw, threads);
  Add(Stats().pool_batches);
  Add(Stats().bytes_copied, offsets_length + macs_length + data_copy);
  Add(Stats().copy_ns, NowNs() - called_ns);
  if (caller_helps && raw->HelpAndEnd(pool)) {
    raw->Settle(env);
    delete raw;
    Add(Stats().settled_in_call);
  } else {
    raw->Release();  // `raw` may be finished from here on: not touched again
  }
  return Napi::Value(env, promise);
}

bool AsyncBatch::HelpAndEnd(ThreadPool* pool) {
  // The cost model may be off (a busy core, a cold cache): a bound in time
  // keeps the event loop free whatever the batch turns out to cost.
  const uint64_t until = NowNs() + static_cast<uint64_t>(2 * kCallerShareNs);
  while (NowNs() < until && RunNextUnit()) {
  }
  if (!Exhausted()) {
    pool->Wake(pool->size());  // the pool takes the rest
    return false;
  }
  // Every unit is taken. The pool threads still in the job each finish at
  // most one unit: wait that long for them, then end the job here.
  pool->Retire(this);
  const uint64_t wait_until = NowNs() + static_cast<uint64_t>(2 * kUnitNs);
  while (!SoleHolder() && NowNs() < wait_until) CpuRelax();
  if (!SoleHolder()) return false;
  settle_in_call_ = true;  // nobody else holds the job: Finished() runs here, now
  Release();
  return true;
}

#ifdef KMS_HMAC_FAULT_INJECTION
// Sanitizer builds only (npm run test:asan): a unit whose first message
// starts with this marker throws, as any failure while hashing would, so a
// test can prove that such a batch rejects its promise instead of hanging.
constexpr char kFaultMarker[] = "kms-hmac:fault-injection";

static void MaybeInjectFault(const uint8_t* data, const uint32_t* offsets, size_t first) {
  const size_t length = offsets[first + 1] - offsets[first];
  if (length >= sizeof(kFaultMarker) - 1 &&
      std::memcmp(data + offsets[first], kFaultMarker, sizeof(kFaultMarker) - 1) == 0) {
    throw std::runtime_error("injected fault");
  }
}
#endif

void AsyncBatch::RunUnit(size_t u) {
  const Unit unit = units_[u];
#ifdef KMS_HMAC_FAULT_INJECTION
  if (unit.begin < unit.end) MaybeInjectFault(data_, offsets_, unit.begin);
#endif
  const SpanList messages = SpanList::Packed(data_, offsets_, count_);
  if (verify_) {
    VerifyRange(key_, messages, MacList::Strided(macs_, key_.mac_length), unit.begin, unit.end, out_);
  } else {
    MacRange(key_, messages, unit.begin, unit.end, out_);
  }
}

bool AsyncBatch::RunNextUnit() {
  size_t u = next_.load(std::memory_order_relaxed);
  do {
    if (u >= ready_.load(std::memory_order_acquire)) return false;
  } while (!next_.compare_exchange_weak(u, u + 1, std::memory_order_relaxed));
  uint64_t expected = 0;
  first_start_ns_.compare_exchange_strong(expected, NowNs(), std::memory_order_relaxed);
  try {
    RunUnit(u);
  } catch (...) {
    Fail();  // the batch rejects; its other units still run, so it ends
  }
  Add(Stats().chunks);
  return true;
}

void AsyncBatch::Work() {
  size_t waits = 0;
  for (;;) {
    if (RunNextUnit()) {
      waits = 0;
      continue;
    }
    if (copied_.load(std::memory_order_acquire)) {
      if (next_.load(std::memory_order_relaxed) >= ready_.load(std::memory_order_acquire)) return;
      continue;
    }
    // The JS thread is still copying: a unit takes it a few microseconds, so
    // spin briefly, then give the core away (the copier may be waiting for it).
    if (++waits < 64) CpuRelax();
    else std::this_thread::yield();
  }
}

void AsyncBatch::Finished(bool failed) {
  failed_ = failed;
  finished_ns_ = NowNs();
  EnvState* state = state_;  // `this` may be settled and deleted as soon as it is queued
  if (settle_in_call_) {
    state->PoolDone();
    return;
  }
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
  Unpin(env);
  Napi::Value result;
  Napi::Value error;
  try {
    if (failed_) {
      error = Napi::Error::New(env, "kms-hmac: the async batch failed on a worker thread").Value();
    } else if (out_in_place_) {
      result = Napi::Value(env, target);  // shared memory: still there, and as long as it was
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

void AsyncBatch::Unpin(Napi::Env env) {
  for (napi_ref& ref : pins_) {
    if (ref != nullptr) napi_delete_reference(env, ref);
    ref = nullptr;
  }
  if (out_ref_ != nullptr) napi_delete_reference(env, out_ref_);
  out_ref_ = nullptr;
}

void SettleOnJsThread(napi_env env, napi_value, void*, void* data) {
  auto* job = static_cast<AsyncBatch*>(data);
  if (env != nullptr) job->Settle(Napi::Env(env));
  delete job;  // env == nullptr: the environment is closing, the promise with it
}

}  // namespace

Napi::Value StartBatch(Napi::Env env, const HmacKey& key, const JsBatch& batch, Napi::Value out) {
  const PackedBatch& spans = batch.spans;
  const size_t data_length = spans.offsets[spans.count] - spans.offsets[0];
  const double ns = mb::PredictNs(key.alg, spans.count, data_length);
  ThreadPool* pool = ns >= kInlineNs ? ThreadPool::Get() : nullptr;
  if (pool == nullptr) return RunInline(env, key, spans, out);
  const size_t block = BlockLength(key.alg);
  const double work = static_cast<double>(WorkBytes(block, spans.count, data_length));
  const size_t unit_bytes = std::max<size_t>(block, static_cast<size_t>(work * kUnitNs / ns));
  const bool caller_helps = ns <= kCallerShareNs * static_cast<double>(pool->size());
  return AsyncBatch::Start(env, pool, key, batch, out, unit_bytes, caller_helps);
}

Napi::Value BatchStatsObject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const BatchStats& s = Stats();
  Napi::Object o = Napi::Object::New(env);
  auto set = [&](const char* name, const std::atomic<uint64_t>& value) {
    o.Set(name, Napi::Number::New(env, static_cast<double>(value.load(std::memory_order_relaxed))));
  };
  set("inlineBatches", s.inline_batches);
  set("settledInCall", s.settled_in_call);
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
