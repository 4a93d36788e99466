// kms-hmac's WebAssembly HMAC module: HMAC (RFC 2104) over SHA-224/256/384/512.
//
// The ABI is static regions (layout.ts) plus a few calls. JS copies inputs
// into the regions, calls once per chunk, and copies results out. Nothing
// here allocates; every entry point checks its scalar arguments and the
// batch offsets, and returns a status instead of trapping, so bad input can
// neither crash the host nor make the module read another region (such as the
// key slots) into a MAC.
//
// Status codes: 0 ok, 1 bad argument, 2 bad offsets. verify* return 1 valid,
// 0 invalid, -1 bad argument.

import {
  DATA, DATA_SIZE, OFFS, OUT, RES, KEYS, KEYWIN, KEYWIN_SIZE, KEY_SLOTS, SLOT_SIZE, MAX_BATCH,
  PAD, TMP, CTX, blockLen, digestLen, ALGORITHM_COUNT,
} from './layout';
import { compress256, IV224, IV256 } from './sha256';
import { compress512, IV384, IV512 } from './sha512';
import { compress256x4, WB4, ST4 } from './sha256x4';
import { compress512x2, WB2, ST2 } from './sha512x2';

export {
  DATA, DATA_SIZE, OFFS, OUT, RES, KEYS, KEYWIN, KEYWIN_SIZE, KEY_SLOTS, SLOT_SIZE, MAX_BATCH, ALGORITHM_COUNT,
} from './layout';

/** Per algorithm code, for the host's load-time check of its algorithm table (0: no such code). */
export function algorithmMacLength(alg: u32): u32 {
  return alg < ALGORITHM_COUNT ? digestLen(alg) : 0;
}
export function algorithmBlockLength(alg: u32): u32 {
  return alg < ALGORITHM_COUNT ? blockLen(alg) : 0;
}

/** 1 when this build hashes batches in SIMD lanes (SHA-224/256 x4, SHA-384/512 x2). */
export const SIMD: u32 = ASC_FEATURE_SIMD ? 1 : 0;

// Working state of one hash (64 B) and SIMD lane bookkeeping.
const HS: usize = memory.data(64, 16);
// Per lane (32 B): message index, data pointer, length, block, block count, phase.
// LPAD / LDIG: 4 lanes x 64 B (SHA-256) or 2 lanes x 128 B / 64 B (SHA-512).
const LANES: usize = memory.data(4 * 32, 16);
const LPAD: usize = memory.data(4 * 64, 16);
const LDIG: usize = memory.data(4 * 32, 16);

// ---------------------------------------------------------------- helpers

@inline function compress(alg: u32, state: usize, block: usize): void {
  if (alg >= 2) compress512(state, block);
  else compress256(state, block);
}

@inline function slotPtr(slot: u32): usize {
  return KEYS + <usize>slot * SLOT_SIZE;
}

function loadIv(alg: u32, dst: usize): void {
  const iv = alg == 0 ? IV224 : alg == 1 ? IV256 : alg == 2 ? IV384 : IV512;
  memory.copy(dst, iv, 64);
}

/** Writes the first digestLen(alg) bytes of `state` big-endian to `out`. */
function writeDigest(alg: u32, state: usize, out: usize): void {
  if (alg >= 2) {
    const n: usize = alg == 2 ? 6 : 8;
    for (let i: usize = 0; i < n; i++) store<u64>(out + (i << 3), bswap<u64>(load<u64>(state + (i << 3))));
  } else {
    const n: usize = alg == 0 ? 7 : 8;
    for (let i: usize = 0; i < n; i++) store<u32>(out + (i << 2), bswap<u32>(load<u32>(state + (i << 2))));
  }
}

/**
 * Absorbs the final `len` bytes at `p` into `state` and applies the FIPS
 * 180-4 padding (5.1), where `prefix` bytes were already absorbed. Full
 * blocks are read in place; only the tail is copied into PAD.
 */
function hashTail(alg: u32, state: usize, p: usize, len: u32, prefix: u64): void {
  const bl = blockLen(alg);
  let n = len;
  while (n >= bl) {
    compress(alg, state, p);
    p += bl;
    n -= bl;
  }
  memory.copy(PAD, p, n);
  store<u8>(PAD + n, 0x80);
  const lenBytes: u32 = alg >= 2 ? 16 : 8;
  if (n + 1 + lenBytes > bl) {
    memory.fill(PAD + n + 1, 0, bl - n - 1);
    compress(alg, state, PAD);
    memory.fill(PAD, 0, bl - 8);
  } else {
    memory.fill(PAD + n + 1, 0, bl - 8 - n - 1);
  }
  store<u64>(PAD + bl - 8, bswap<u64>((prefix + <u64>len) << 3));
  compress(alg, state, PAD);
}

/** Outer hash: HS = outer(slot) absorbing the inner digest held in `inner`. */
function outerFinish(alg: u32, s: usize, inner: usize): void {
  const bl = blockLen(alg);
  const dl = digestLen(alg);
  writeDigest(alg, inner, PAD);
  store<u8>(PAD + dl, 0x80);
  memory.fill(PAD + dl + 1, 0, bl - 8 - dl - 1);
  store<u64>(PAD + bl - 8, bswap<u64>(<u64>(bl + dl) << 3));
  memory.copy(HS, s + 64, 64);
  compress(alg, HS, PAD);
}

/** HMAC of `len` bytes at `p` with the key in slot `s`, left in HS. */
function macMsg(alg: u32, s: usize, p: usize, len: u32): void {
  memory.copy(HS, s, 64);
  hashTail(alg, HS, p, len, <u64>blockLen(alg));
  outerFinish(alg, s, HS);
}

/** Constant-time equality of n bytes: 1 equal, 0 different. */
function ctEqual(a: usize, b: usize, n: u32): u32 {
  let diff: u32 = 0;
  for (let i: usize = 0; i < <usize>n; i++) diff |= <u32>load<u8>(a + i) ^ <u32>load<u8>(b + i);
  return (diff - 1) >>> 31;
}

@inline function badArgs(slot: u32, alg: u32): bool {
  return slot >= KEY_SLOTS || alg > 3;
}

/** Offsets i..count (minus base) must be non-decreasing and inside DATA. */
function offsetsOk(count: u32, base: u32): bool {
  if (count > MAX_BATCH) return false;
  let prev: u32 = 0;
  for (let i: usize = 0; i <= <usize>count; i++) {
    const o = load<u32>(OFFS + (i << 2)) - base;
    if (o > DATA_SIZE || o < prev) return false;
    prev = o;
  }
  return true;
}

// ------------------------------------------------------------------- keys

/**
 * Precomputes the inner and outer states for the key in KEYWIN (keyLen <=
 * block length; longer keys are hashed first with the stream calls) into
 * slot `slot`, then wipes the key window and every scratch area that saw
 * key-derived words.
 */
export function keySetup(slot: u32, alg: u32, keyLen: u32): u32 {
  if (badArgs(slot, alg) || keyLen > blockLen(alg)) {
    wipeScratch();
    return 1;
  }
  const s = slotPtr(slot);
  const bl = blockLen(alg);
  for (let i: u32 = 0; i < bl; i++) store<u8>(PAD + i, (i < keyLen ? load<u8>(KEYWIN + i) : 0) ^ 0x36);
  loadIv(alg, s);
  compress(alg, s, PAD);
  for (let i: u32 = 0; i < bl; i++) store<u8>(PAD + i, (i < keyLen ? load<u8>(KEYWIN + i) : 0) ^ 0x5c);
  loadIv(alg, s + 64);
  compress(alg, s + 64, PAD);
  wipeScratch();
  return 0;
}

/** Zeroes a key slot. */
export function keyWipe(slot: u32): void {
  if (slot < KEY_SLOTS) memory.fill(slotPtr(slot), 0, SLOT_SIZE);
}

/** Zeroes the key window and all scratch (schedules, pads, stream context). */
export function wipeScratch(): void {
  memory.fill(KEYWIN, 0, KEYWIN_SIZE);
  memory.fill(PAD, 0, 256);
  memory.fill(TMP, 0, 64);
  memory.fill(CTX, 0, 256);
  memory.fill(HS, 0, 64);
  memory.fill(LANES, 0, 4 * 32);
  memory.fill(LPAD, 0, 4 * 64);
  memory.fill(LDIG, 0, 4 * 32);
  memory.fill(WB4, 0, 16 * 16);
  memory.fill(ST4, 0, 8 * 16);
  memory.fill(WB2, 0, 16 * 16);
  memory.fill(ST2, 0, 8 * 16);
}

// ------------------------------------------------------------- streaming
// CTX: state @0 (64 B), buffer @64 (128 B), buffered u32 @192, alg u32 @196,
// absorbed bytes u64 @200. Used for keys longer than a block (plain hash)
// and for single messages larger than DATA (HMAC).

/** Starts a plain hash (slot < 0) or the inner hash of an HMAC key. */
export function streamInit(alg: u32, slot: i32): u32 {
  if (alg > 3 || slot >= <i32>KEY_SLOTS) return 1;
  if (slot < 0) {
    loadIv(alg, CTX);
    store<u64>(CTX, 0, 200);
  } else {
    memory.copy(CTX, slotPtr(<u32>slot), 64);
    store<u64>(CTX, <u64>blockLen(alg), 200);
  }
  store<u32>(CTX, 0, 192);
  store<u32>(CTX, alg, 196);
  return 0;
}

/** Absorbs `len` bytes from DATA (from = 0) or KEYWIN (from = 1). */
export function streamUpdate(from: u32, len: u32): u32 {
  if (from > 1 || len > (from == 0 ? DATA_SIZE : KEYWIN_SIZE)) return 1;
  let src: usize = from == 0 ? DATA : KEYWIN;
  const alg = load<u32>(CTX, 196);
  const bl = blockLen(alg);
  let buffered = load<u32>(CTX, 192);
  let total = load<u64>(CTX, 200);
  if (buffered > 0) {
    const take = min(bl - buffered, len);
    memory.copy(CTX + 64 + buffered, src, take);
    buffered += take;
    src += take;
    len -= take;
    if (buffered == bl) {
      compress(alg, CTX, CTX + 64);
      total += bl;
      buffered = 0;
    }
  }
  while (len >= bl) {
    compress(alg, CTX, src);
    total += bl;
    src += bl;
    len -= bl;
  }
  if (len > 0) {
    memory.copy(CTX + 64, src, len);
    buffered = len;
  }
  store<u32>(CTX, buffered, 192);
  store<u64>(CTX, total, 200);
  return 0;
}

/** Finishes a plain hash: digest into KEYWIN[0..digestLen). Returns its length. */
export function streamDigestToKeyWindow(): u32 {
  const alg = load<u32>(CTX, 196);
  hashTail(alg, CTX, CTX + 64, load<u32>(CTX, 192), load<u64>(CTX, 200));
  writeDigest(alg, CTX, KEYWIN);
  memory.fill(CTX, 0, 256);
  return digestLen(alg);
}

/**
 * Finishes an HMAC started with streamInit(alg, slot). mode 0: MAC into
 * OUT; mode 1: compare with the MAC at OUT and return 1/0.
 */
export function streamMacFinal(slot: u32, mode: u32): i32 {
  const alg = load<u32>(CTX, 196);
  if (badArgs(slot, alg)) return -1;
  hashTail(alg, CTX, CTX + 64, load<u32>(CTX, 192), load<u64>(CTX, 200));
  outerFinish(alg, slotPtr(slot), CTX);
  memory.fill(CTX, 0, 256);
  if (mode == 0) {
    writeDigest(alg, HS, OUT);
    return 1;
  }
  writeDigest(alg, HS, TMP);
  return <i32>ctEqual(TMP, OUT, digestLen(alg));
}

// ----------------------------------------------------------- single MAC

/** MAC of DATA[0..len) into OUT. */
export function macOne(slot: u32, alg: u32, len: u32): u32 {
  if (badArgs(slot, alg) || len > DATA_SIZE) return 1;
  macMsg(alg, slotPtr(slot), DATA, len);
  writeDigest(alg, HS, OUT);
  return 0;
}

/** Verifies DATA[0..len) against the MAC at OUT, in constant time. */
export function verifyOne(slot: u32, alg: u32, len: u32): i32 {
  if (badArgs(slot, alg) || len > DATA_SIZE) return -1;
  macMsg(alg, slotPtr(slot), DATA, len);
  writeDigest(alg, HS, TMP);
  return <i32>ctEqual(TMP, OUT, digestLen(alg));
}

// ----------------------------------------------------------------- batch

/**
 * Message i is DATA[OFFS[i]-base .. OFFS[i+1]-base). mode 0: MAC i into
 * OUT + i*digestLen. mode 1: compare with the MAC there, result into RES[i].
 */
export function batch(slot: u32, alg: u32, count: u32, base: u32, mode: u32): u32 {
  if (badArgs(slot, alg) || mode > 1) return 1;
  if (!offsetsOk(count, base)) return 2;
  if (ASC_FEATURE_SIMD) {
    if (alg < 2 && count > 1) {
      batchX4(slotPtr(slot), alg, count, base, mode);
      return 0;
    }
    if (alg >= 2 && count > 1) {
      batchX2(slotPtr(slot), alg, count, base, mode);
      return 0;
    }
  }
  const s = slotPtr(slot);
  const dl = digestLen(alg);
  for (let i: u32 = 0; i < count; i++) {
    const start = load<u32>(OFFS + (<usize>i << 2)) - base;
    const end = load<u32>(OFFS + (<usize>i << 2), 4) - base;
    macMsg(alg, s, DATA + start, end - start);
    emit(alg, HS, i, dl, mode);
  }
  return 0;
}

@inline function emit(alg: u32, state: usize, i: u32, dl: u32, mode: u32): void {
  const at = OUT + <usize>i * dl;
  if (mode == 0) {
    writeDigest(alg, state, at);
  } else {
    writeDigest(alg, state, TMP);
    store<u8>(RES + i, <u8>ctEqual(TMP, at, dl));
  }
}

// ------------------------------------------------------ SIMD (4 lanes)

/**
 * Finishes the last busy lane with the scalar code: its state (word j at
 * st + j*16 + l*wordBytes) moves to HS, and the rest of its message (blocks
 * of 1 << blockShift bytes, from the lane's current block) is hashed in place.
 */
function finishLaneScalar(
  l: usize, alg: u32, s: usize, dl: u32, mode: u32, st: usize, wordBytes: usize, dig: usize, blockShift: u32,
): void {
  const L = LANES + (l << 5);
  for (let j: usize = 0; j < 8; j++) {
    if (wordBytes == 8) store<u64>(HS + (j << 3), load<u64>(st + (j << 4) + (l << 3)));
    else store<u32>(HS + (j << 2), load<u32>(st + (j << 4) + (l << 2)));
  }
  if (load<u32>(L, 20) == 0) {
    const bl: u32 = 1 << blockShift;
    const off = load<u32>(L, 12) << blockShift;
    const len = load<u32>(L, 8);
    if (off <= len) {
      // The 0x80 terminator is still ahead: hash the rest of the message in
      // place; bytes absorbed so far are the key block plus `off`.
      hashTail(alg, HS, <usize>load<u32>(L, 4) + off, len - off, <u64>(bl + off));
    } else {
      // Only the length block is left (the terminator went into the previous block).
      memory.fill(PAD, 0, bl - 8);
      store<u64>(PAD + bl - 8, bswap<u64>((<u64>len + bl) << 3));
      compress(alg, HS, PAD);
    }
    outerFinish(alg, s, HS);
  } else {
    // Only the outer block is left: the inner digest words are in `dig`.
    outerFinish(alg, s, dig);
  }
  emit(alg, HS, load<u32>(L, 0), dl, mode);
}
// Four messages at a time, one 64-byte block per lane per step. Each lane
// runs its own message: inner blocks (read in place, or the padded tail
// built in LPAD), then the single outer block; when a lane finishes it
// emits its MAC and takes the next message, so messages of any mix of
// lengths share the steps without grouping. Lanes without work idle.

function laneStart(l: usize, idx: u32, s: usize, base: u32): void {
  const L = LANES + (l << 5);
  const start = load<u32>(OFFS + (<usize>idx << 2)) - base;
  const len = load<u32>(OFFS + (<usize>idx << 2), 4) - start - base;
  store<u32>(L, idx, 0);
  store<u32>(L, <u32>(DATA + start), 4);
  store<u32>(L, len, 8);
  store<u32>(L, 0, 12);
  store<u32>(L, (len + 72) >> 6, 16);
  store<u32>(L, 0, 20);
  for (let j: usize = 0; j < 8; j++) store<u32>(ST4 + (j << 4) + (l << 2), load<u32>(s + (j << 2)));
}

/**
 * Pointer to lane l's current inner block of 1 << shift bytes (64 for
 * SHA-224/256, 128 for SHA-384/512): in place, or its padded tail built in
 * LPAD. The length field is the last 8 bytes of the final block (the high
 * half of SHA-512's 128-bit length is always zero here).
 */
@inline function laneBlockSrc(l: usize, shift: u32): usize {
  const block: u32 = 1 << shift;
  const L = LANES + (l << 5);
  const ptr = <usize>load<u32>(L, 4);
  const len = load<u32>(L, 8);
  const blk = load<u32>(L, 12);
  const off = blk << shift;
  if (off + block <= len) return ptr + off;
  const src = LPAD + (l << shift);
  memory.fill(src, 0, block);
  if (len >= off) {
    const r = len - off;
    memory.copy(src, ptr + off, r);
    store<u8>(src + r, 0x80);
  }
  if (blk + 1 == load<u32>(L, 16)) store<u64>(src + block - 8, bswap<u64>((<u64>len + block) << 3));
  return src;
}

@inline function laneSrc(l: usize): usize {
  return laneBlockSrc(l, 6);
}

function laneFill(l: usize, alg: u32): void {
  const L = LANES + (l << 5);
  const col = WB4 + (l << 2);
  if (load<u32>(L, 20) == 0) {
    const src = laneSrc(l);
    for (let t: usize = 0; t < 16; t++) store<u32>(col + (t << 4), bswap<u32>(load<u32>(src + (t << 2))));
  } else {
    const dw: usize = alg == 0 ? 7 : 8;
    const dig = LDIG + (l << 5);
    for (let t: usize = 0; t < dw; t++) store<u32>(col + (t << 4), load<u32>(dig + (t << 2)));
    store<u32>(col + (dw << 4), 0x80000000);
    for (let t: usize = dw + 1; t < 15; t++) store<u32>(col + (t << 4), 0);
    store<u32>(col + (15 << 4), <u32>(64 + (dw << 2)) << 3);
  }
}

/**
 * All four lanes on inner blocks: transpose the four blocks 4 words at a
 * time with shuffles, folding the big-endian byte swap into the first stage.
 */
function fillAllX4(): void {
  const a = laneSrc(0);
  const b = laneSrc(1);
  const c = laneSrc(2);
  const d = laneSrc(3);
  for (let t: usize = 0; t < 64; t += 16) {
    const va = v128.load(a + t);
    const vb = v128.load(b + t);
    const vc = v128.load(c + t);
    const vd = v128.load(d + t);
    // [A0 B0 A1 B1] and [A2 B2 A3 B3], byte-swapped; same for C/D.
    const abLo = i8x16.shuffle(va, vb, 3, 2, 1, 0, 19, 18, 17, 16, 7, 6, 5, 4, 23, 22, 21, 20);
    const abHi = i8x16.shuffle(va, vb, 11, 10, 9, 8, 27, 26, 25, 24, 15, 14, 13, 12, 31, 30, 29, 28);
    const cdLo = i8x16.shuffle(vc, vd, 3, 2, 1, 0, 19, 18, 17, 16, 7, 6, 5, 4, 23, 22, 21, 20);
    const cdHi = i8x16.shuffle(vc, vd, 11, 10, 9, 8, 27, 26, 25, 24, 15, 14, 13, 12, 31, 30, 29, 28);
    const row = WB4 + (t << 2); // word t/4 of every lane
    v128.store(row, i8x16.shuffle(abLo, cdLo, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23), 0);
    v128.store(row, i8x16.shuffle(abLo, cdLo, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31), 16);
    v128.store(row, i8x16.shuffle(abHi, cdHi, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23), 32);
    v128.store(row, i8x16.shuffle(abHi, cdHi, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31), 48);
  }
}

function batchX4(s: usize, alg: u32, count: u32, base: u32, mode: u32): void {
  const dl = digestLen(alg);
  let next: u32 = 0;
  let active: u32 = 0;
  let live: u32 = 0; // bit l set: lane l has a message
  for (let l: usize = 0; l < 4; l++) {
    if (next < count) {
      laneStart(l, next++, s, base);
      live |= 1 << <u32>l;
      active++;
    }
  }
  while (active > 0) {
    if (active == 1 && next >= count) {
      // One message left: a 4-lane step would cost ~2 scalar blocks for 1.
      finishLaneScalar(<usize>ctz(live), alg, s, dl, mode, ST4, 4, LDIG + (<usize>ctz(live) << 5), 6);
      return;
    }
    if (live == 15 && (load<u32>(LANES, 20) | load<u32>(LANES, 52) | load<u32>(LANES, 84) | load<u32>(LANES, 116)) == 0) {
      fillAllX4();
    } else {
      for (let l: usize = 0; l < 4; l++) if (live & (1 << <u32>l)) laneFill(l, alg);
    }
    compress256x4();
    for (let l: usize = 0; l < 4; l++) {
      if (!(live & (1 << <u32>l))) continue;
      const L = LANES + (l << 5);
      if (load<u32>(L, 20) == 0) {
        const blk = load<u32>(L, 12) + 1;
        store<u32>(L, blk, 12);
        if (blk == load<u32>(L, 16)) {
          // Inner hash done: keep its digest words, switch the lane to the outer state.
          store<u32>(L, 1, 20);
          const dig = LDIG + (l << 5);
          for (let j: usize = 0; j < 8; j++) {
            store<u32>(dig + (j << 2), load<u32>(ST4 + (j << 4) + (l << 2)));
            store<u32>(ST4 + (j << 4) + (l << 2), load<u32>(s + 64 + (j << 2)));
          }
        }
      } else {
        for (let j: usize = 0; j < 8; j++) store<u32>(HS + (j << 2), load<u32>(ST4 + (j << 4) + (l << 2)));
        emit(alg, HS, load<u32>(L, 0), dl, mode);
        if (next < count) {
          laneStart(l, next++, s, base);
        } else {
          live &= ~(1 << <u32>l);
          active--;
        }
      }
    }
  }
}

// ------------------------------------------------------ SIMD (2 lanes)
// The same scheduler for SHA-384/512: two messages, one 128-byte block per
// lane per step, u64 words in i64x2 lanes.

function lane2Start(l: usize, idx: u32, s: usize, base: u32): void {
  const L = LANES + (l << 5);
  const start = load<u32>(OFFS + (<usize>idx << 2)) - base;
  const len = load<u32>(OFFS + (<usize>idx << 2), 4) - start - base;
  store<u32>(L, idx, 0);
  store<u32>(L, <u32>(DATA + start), 4);
  store<u32>(L, len, 8);
  store<u32>(L, 0, 12);
  store<u32>(L, (len + 144) >> 7, 16);
  store<u32>(L, 0, 20);
  for (let j: usize = 0; j < 8; j++) store<u64>(ST2 + (j << 4) + (l << 3), load<u64>(s + (j << 3)));
}

@inline function lane2Src(l: usize): usize {
  return laneBlockSrc(l, 7);
}

function lane2Fill(l: usize, alg: u32): void {
  const L = LANES + (l << 5);
  const col = WB2 + (l << 3);
  if (load<u32>(L, 20) == 0) {
    const src = lane2Src(l);
    for (let t: usize = 0; t < 16; t++) store<u64>(col + (t << 4), bswap<u64>(load<u64>(src + (t << 3))));
  } else {
    const dw: usize = alg == 2 ? 6 : 8;
    const dig = LDIG + (l << 6);
    for (let t: usize = 0; t < dw; t++) store<u64>(col + (t << 4), load<u64>(dig + (t << 3)));
    store<u64>(col + (dw << 4), 0x8000000000000000);
    for (let t: usize = dw + 1; t < 15; t++) store<u64>(col + (t << 4), 0);
    store<u64>(col + (15 << 4), <u64>(128 + (dw << 3)) << 3);
  }
}

/** Both lanes on inner blocks: interleave and byte-swap two words at a time with shuffles. */
function fillAllX2(): void {
  const a = lane2Src(0);
  const b = lane2Src(1);
  for (let t: usize = 0; t < 128; t += 16) {
    const va = v128.load(a + t);
    const vb = v128.load(b + t);
    const row = WB2 + (t << 1); // words t/8 and t/8+1 of both lanes
    v128.store(row, i8x16.shuffle(va, vb, 7, 6, 5, 4, 3, 2, 1, 0, 23, 22, 21, 20, 19, 18, 17, 16), 0);
    v128.store(row, i8x16.shuffle(va, vb, 15, 14, 13, 12, 11, 10, 9, 8, 31, 30, 29, 28, 27, 26, 25, 24), 16);
  }
}

function batchX2(s: usize, alg: u32, count: u32, base: u32, mode: u32): void {
  const dl = digestLen(alg);
  let next: u32 = 0;
  let active: u32 = 0;
  let live: u32 = 0;
  for (let l: usize = 0; l < 2; l++) {
    if (next < count) {
      lane2Start(l, next++, s, base);
      live |= 1 << <u32>l;
      active++;
    }
  }
  while (active > 0) {
    if (active == 1 && next >= count) {
      finishLaneScalar(<usize>ctz(live), alg, s, dl, mode, ST2, 8, LDIG + (<usize>ctz(live) << 6), 7);
      return;
    }
    if (live == 3 && (load<u32>(LANES, 20) | load<u32>(LANES, 52)) == 0) {
      fillAllX2();
    } else {
      for (let l: usize = 0; l < 2; l++) if (live & (1 << <u32>l)) lane2Fill(l, alg);
    }
    compress512x2();
    for (let l: usize = 0; l < 2; l++) {
      if (!(live & (1 << <u32>l))) continue;
      const L = LANES + (l << 5);
      if (load<u32>(L, 20) == 0) {
        const blk = load<u32>(L, 12) + 1;
        store<u32>(L, blk, 12);
        if (blk == load<u32>(L, 16)) {
          store<u32>(L, 1, 20);
          const dig = LDIG + (l << 6);
          for (let j: usize = 0; j < 8; j++) {
            store<u64>(dig + (j << 3), load<u64>(ST2 + (j << 4) + (l << 3)));
            store<u64>(ST2 + (j << 4) + (l << 3), load<u64>(s + 64 + (j << 3)));
          }
        }
      } else {
        for (let j: usize = 0; j < 8; j++) store<u64>(HS + (j << 3), load<u64>(ST2 + (j << 4) + (l << 3)));
        emit(alg, HS, load<u32>(L, 0), dl, mode);
        if (next < count) {
          lane2Start(l, next++, s, base);
        } else {
          live &= ~(1 << <u32>l);
          active--;
        }
      }
    }
  }
}
