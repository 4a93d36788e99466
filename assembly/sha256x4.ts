// Four-lane SHA-256 compression in WebAssembly SIMD128 (i32x4): lane l of
// every v128 belongs to message l. Same algorithm as sha256.ts (FIPS 180-4,
// 6.2.2), vectorised across independent messages. Only compiled into the
// SIMD build (guarded by ASC_FEATURE_SIMD at the call site).

import { K256 } from './sha256';

/**
 * Message schedule of the four lanes: word t of lane l at WX4 + t*16 + l*4.
 * Callers write the transposed input block into its first 16 words (WB4).
 */
export const WX4: usize = memory.data(64 * 16, 16);
export const WB4: usize = WX4;
/** Lane states: word j of lane l at ST4 + j*16 + l*4. */
export const ST4: usize = memory.data(8 * 16, 16);

@inline function rotr4(x: v128, n: i32): v128 {
  return v128.or(i32x4.shr_u(x, n), i32x4.shl(x, 32 - n));
}
@inline function bigSigma0(x: v128): v128 {
  return v128.xor(v128.xor(rotr4(x, 2), rotr4(x, 13)), rotr4(x, 22));
}
@inline function bigSigma1(x: v128): v128 {
  return v128.xor(v128.xor(rotr4(x, 6), rotr4(x, 11)), rotr4(x, 25));
}

/** Compresses the four transposed blocks in WB4 into the four states in ST4. */
export function compress256x4(): void {
  for (let t: usize = 16; t < 64; t++) {
    const w15 = v128.load(WX4 + ((t - 15) << 4));
    const w2 = v128.load(WX4 + ((t - 2) << 4));
    const s0 = v128.xor(v128.xor(rotr4(w15, 7), rotr4(w15, 18)), i32x4.shr_u(w15, 3));
    const s1 = v128.xor(v128.xor(rotr4(w2, 17), rotr4(w2, 19)), i32x4.shr_u(w2, 10));
    v128.store(
      WX4 + (t << 4),
      i32x4.add(i32x4.add(s1, v128.load(WX4 + ((t - 7) << 4))), i32x4.add(s0, v128.load(WX4 + ((t - 16) << 4)))),
    );
  }
  let a = v128.load(ST4, 0);
  let b = v128.load(ST4, 16);
  let c = v128.load(ST4, 32);
  let d = v128.load(ST4, 48);
  let e = v128.load(ST4, 64);
  let f = v128.load(ST4, 80);
  let g = v128.load(ST4, 96);
  let h = v128.load(ST4, 112);
  let t1: v128;
  for (let i: usize = 0; i < 64; i += 8) {
    t1 = i32x4.add(i32x4.add(i32x4.add(h, bigSigma1(e)), i32x4.add(v128.bitselect(f, g, e), i32x4.splat(load<u32>(K256 + (i << 2), 0)))), v128.load(WX4 + (i << 4), 0));
    d = i32x4.add(d, t1);
    h = i32x4.add(t1, i32x4.add(bigSigma0(a), v128.bitselect(c, a, v128.xor(a, b))));
    t1 = i32x4.add(i32x4.add(i32x4.add(g, bigSigma1(d)), i32x4.add(v128.bitselect(e, f, d), i32x4.splat(load<u32>(K256 + (i << 2), 4)))), v128.load(WX4 + (i << 4), 16));
    c = i32x4.add(c, t1);
    g = i32x4.add(t1, i32x4.add(bigSigma0(h), v128.bitselect(b, h, v128.xor(h, a))));
    t1 = i32x4.add(i32x4.add(i32x4.add(f, bigSigma1(c)), i32x4.add(v128.bitselect(d, e, c), i32x4.splat(load<u32>(K256 + (i << 2), 8)))), v128.load(WX4 + (i << 4), 32));
    b = i32x4.add(b, t1);
    f = i32x4.add(t1, i32x4.add(bigSigma0(g), v128.bitselect(a, g, v128.xor(g, h))));
    t1 = i32x4.add(i32x4.add(i32x4.add(e, bigSigma1(b)), i32x4.add(v128.bitselect(c, d, b), i32x4.splat(load<u32>(K256 + (i << 2), 12)))), v128.load(WX4 + (i << 4), 48));
    a = i32x4.add(a, t1);
    e = i32x4.add(t1, i32x4.add(bigSigma0(f), v128.bitselect(h, f, v128.xor(f, g))));
    t1 = i32x4.add(i32x4.add(i32x4.add(d, bigSigma1(a)), i32x4.add(v128.bitselect(b, c, a), i32x4.splat(load<u32>(K256 + (i << 2), 16)))), v128.load(WX4 + (i << 4), 64));
    h = i32x4.add(h, t1);
    d = i32x4.add(t1, i32x4.add(bigSigma0(e), v128.bitselect(g, e, v128.xor(e, f))));
    t1 = i32x4.add(i32x4.add(i32x4.add(c, bigSigma1(h)), i32x4.add(v128.bitselect(a, b, h), i32x4.splat(load<u32>(K256 + (i << 2), 20)))), v128.load(WX4 + (i << 4), 80));
    g = i32x4.add(g, t1);
    c = i32x4.add(t1, i32x4.add(bigSigma0(d), v128.bitselect(f, d, v128.xor(d, e))));
    t1 = i32x4.add(i32x4.add(i32x4.add(b, bigSigma1(g)), i32x4.add(v128.bitselect(h, a, g), i32x4.splat(load<u32>(K256 + (i << 2), 24)))), v128.load(WX4 + (i << 4), 96));
    f = i32x4.add(f, t1);
    b = i32x4.add(t1, i32x4.add(bigSigma0(c), v128.bitselect(e, c, v128.xor(c, d))));
    t1 = i32x4.add(i32x4.add(i32x4.add(a, bigSigma1(f)), i32x4.add(v128.bitselect(g, h, f), i32x4.splat(load<u32>(K256 + (i << 2), 28)))), v128.load(WX4 + (i << 4), 112));
    e = i32x4.add(e, t1);
    a = i32x4.add(t1, i32x4.add(bigSigma0(b), v128.bitselect(d, b, v128.xor(b, c))));
  }
  v128.store(ST4, i32x4.add(v128.load(ST4, 0), a), 0);
  v128.store(ST4, i32x4.add(v128.load(ST4, 16), b), 16);
  v128.store(ST4, i32x4.add(v128.load(ST4, 32), c), 32);
  v128.store(ST4, i32x4.add(v128.load(ST4, 48), d), 48);
  v128.store(ST4, i32x4.add(v128.load(ST4, 64), e), 64);
  v128.store(ST4, i32x4.add(v128.load(ST4, 80), f), 80);
  v128.store(ST4, i32x4.add(v128.load(ST4, 96), g), 96);
  v128.store(ST4, i32x4.add(v128.load(ST4, 112), h), 112);
}
