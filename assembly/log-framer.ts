// The log framer's hot loop (src/logs/framer.ts), for a one-byte record
// delimiter: not part of the HMAC module (assembly/index.ts), a module of its
// own, built with it by scripts/build-wasm.js into src/logs/framer-binary.ts.
//
// The framer's memory is this module's memory; the JavaScript side lays it
// out and passes addresses: the log's bytes in an input area, the batch slot
// to pack into, the slot's offsets (u32) and record starts (f64), and the
// 16-byte stream id. Each record becomes `streamId | u64be seq | 0x00 |
// record`, the raw-record MAC input of docs/log-format.md. The delimiter is
// found 16 bytes at a time and the record moved with memory.copy: about half
// the cost of the same loop in JavaScript (Buffer.indexOf + copyWithin per
// record).

/** After packRecords: where the next MAC input goes, and how many records the batch holds. */
export let packedEnd: u32 = 0;
export let packedCount: u32 = 0;

/**
 * Packs the whole records of input [at + p, at + len) from `p` into the batch
 * at `w`, while the batch holds fewer than `maxCount` records, the next
 * record ends in the input, is at most `rawMax` bytes and fits below
 * `limit`. The first record packed gets sequence number `seq`, the next
 * seq + 1, and so on; record i of the batch (`count` is the first) gets its
 * start in the log (`logAt` + its position in the input) at `starts + 8i`
 * and the end of its MAC input (relative to `base`) at `offsets + 4(i + 1)`.
 * Returns the input position it stopped at.
 */
export function packRecords(
  at: u32,
  len: u32,
  p: u32,
  w: u32,
  limit: u32,
  count: u32,
  maxCount: u32,
  seq: f64,
  offsets: u32,
  starts: u32,
  base: u32,
  logAt: f64,
  delimiter: u32,
  streamId: u32,
  rawMax: u32,
): u32 {
  const sid = v128.load(streamId);
  const needle = i8x16.splat(<i8>delimiter);
  const end = at + len;
  let n = <u64>seq;
  while (count < maxCount) {
    // the next delimiter, 16 bytes at a time, then byte by byte near the end
    let q = at + p;
    let found = false;
    while (q + 16 <= end) {
      const hits = i8x16.bitmask(i8x16.eq(v128.load(q), needle));
      if (hits != 0) {
        q += ctz(hits);
        found = true;
        break;
      }
      q += 16;
    }
    while (!found && q < end) {
      if (<u32>load<u8>(q) == delimiter) found = true;
      else q++;
    }
    if (!found) break;
    const next = q + 1 - at;
    const size = next - p;
    if (size > rawMax || w + 25 + size > limit) break;
    v128.store(w, sid);
    store<u64>(w, bswap<u64>(n), 16);
    store<u8>(w, 0, 24);
    memory.copy(w + 25, at + p, size);
    store<f64>(starts + (count << 3), logAt + <f64>p);
    w += 25 + size;
    count++;
    store<u32>(offsets + (count << 2), w - base);
    n++;
    p = next;
  }
  packedEnd = w;
  packedCount = count;
  return p;
}
