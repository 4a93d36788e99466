#!/usr/bin/env node
// The baseline for `npm run bench:logs`: the same sidecar format
// (docs/log-format.md), written and checked the plain way — node:crypto
// createHmac once per record, in one thread. It depends on nothing in this
// package, so it is also an independent implementation of the format: the
// benchmark checks that its sidecar is byte-identical to `kms-hmac sign`'s.
//
//   node bench/logs-baseline.js sign   LOG OUT --key-hex HEX --like SIDECAR
//       (header fields — key ARN, stream id, creation time — are copied from
//        SIDECAR so the two outputs can be compared byte for byte)
//   node bench/logs-baseline.js verify LOG SIDECAR --key-hex HEX
//
// Prints one JSON line: { records, bytes, ms, cpuMs, ok }.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createReadStream, openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { open } from 'node:fs/promises';

const [mode, logPath, outPath, ...rest] = process.argv.slice(2);
const arg = (name) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const key = Buffer.from(arg('--key-hex') ?? '', 'hex');
const RAW_MAX = 4071;

function readHeader(path) {
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(12 + 2048);
  const n = readSync(fd, head, 0, head.length, 0);
  const size = fstatSync(fd).size;
  const j = head.readUInt32BE(8);
  const header = JSON.parse(head.subarray(12, 12 + j).toString('utf8'));
  return { fd, size, header, headerBytes: head.subarray(0, Math.min(n, 12 + j)) };
}

function u64(n) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

function prefix(sid, n, kind) {
  return Buffer.concat([sid, u64(n), Buffer.from([kind])]);
}

const CKPT = Buffer.from('KHMACCKP');

/** The checkpoints of a version-2 or -3 sidecar (entries of `size` bytes): [{ records, time }], walking its blocks. */
function checkpointsOf(fd, at, L, size) {
  const out = [];
  const entry = Buffer.alloc(40);
  let records = 0;
  while (readSync(fd, entry, 0, 40, at) === 40 && entry.subarray(0, 8).equals(CKPT)) {
    const count = Number(entry.readBigUInt64BE(16));
    out.push({ records: count, time: Number(entry.readBigUInt64BE(32)) });
    at += size + (count - records) * L;
    records = count;
  }
  return out;
}

/** Calls onRecord(record) for each line (the '\n' included), then afterChunk() per 1 MiB read. */
async function eachLine(path, onRecord, afterChunk = async () => {}) {
  let carry = Buffer.alloc(0);
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    bytes += chunk.length;
    const buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    let pos = 0;
    for (let i = buf.indexOf(10, pos); i >= 0; i = buf.indexOf(10, pos)) {
      onRecord(buf.subarray(pos, i + 1));
      pos = i + 1;
    }
    carry = Buffer.from(buf.subarray(pos));
    await afterChunk();
  }
  if (carry.length) onRecord(carry);
  return bytes;
}

const t0 = performance.now();
const c0 = process.cpuUsage();
let records = 0;
let ok = true;
let bytes = 0;

const { fd, size, header, headerBytes } = readHeader(mode === 'sign' ? arg('--like') : outPath);
const alg =
  header.macAlgorithm === 'HMAC_SHA_512'
    ? 'sha512'
    : header.macAlgorithm === 'HMAC_SHA_384'
      ? 'sha384'
      : header.macAlgorithm === 'HMAC_SHA_224'
        ? 'sha224'
        : 'sha256';
const digest = header.digest === 'SHA-512' ? 'sha512' : 'sha256';
const L = header.macLength;
const sid = Buffer.from(header.streamId, 'hex');
const hmac = (...parts) => {
  const h = createHmac(alg, key);
  for (const p of parts) h.update(p);
  return h.digest();
};
const recordMac = (seq, rec) =>
  rec.length <= RAW_MAX
    ? hmac(prefix(sid, seq, 0), rec)
    : hmac(prefix(sid, seq, 1), createHash(digest).update(rec).digest());
const headerMac = hmac(prefix(sid, 0, 0x48), headerBytes);
if (header.version !== 2 && header.version !== 3) throw new Error('the baseline implements versions 2 and 3 only');
if (header.version === 3 && header.keys !== 'kms') throw new Error('the baseline implements kms-keyed streams only');
// version 3: a checkpoint entry also stores the key epoch (always 0 here) and the block digest, and its MAC binds the epoch
const v3 = header.version === 3;
const D = digest === 'sha512' ? 64 : 32;
const ENTRY = v3 ? 48 + D + L : 40 + L;
const MAC_AT = ENTRY - L;
const blockDigest = (macs) => createHash(digest).update(macs).digest();
const checkpointMac = (k, count, logBytes, time, prev, macs) =>
  hmac(prefix(sid, k, 0x43), u64(count), u64(logBytes), u64(time), ...(v3 ? [u64(0)] : []), prev, blockDigest(macs));
// the checkpoints of the sidecar to imitate (sign) or check (verify): where each block ends, and its time
const checkpoints = checkpointsOf(fd, headerBytes.length + L, L, ENTRY);

if (mode === 'sign') {
  closeSync(fd);
  const out = await open(outPath, 'w');
  await out.write(Buffer.concat([headerBytes, headerMac]));
  let prev = headerMac;
  let k = 0;
  let block = [];
  const sealed = [];
  const seal = () => {
    const c = checkpoints[k];
    const macs = Buffer.concat(block);
    const mac = checkpointMac(k, c.records, bytes, c.time, prev, macs);
    const stored = v3 ? [u64(0), blockDigest(macs)] : [];
    sealed.push(CKPT, u64(k), u64(c.records), u64(bytes), u64(c.time), ...stored, mac, macs);
    prev = mac;
    block = [];
    k++;
  };
  await eachLine(
    logPath,
    (rec) => {
      block.push(recordMac(records, rec));
      records++;
      bytes += rec.length;
      if (records === checkpoints[k]?.records) seal();
    },
    async () => {
      await out.write(Buffer.concat(sealed));
      sealed.length = 0;
    },
  );
  while (k < checkpoints.length) seal(); // a last checkpoint with no new record (an empty log)
  sealed.push(Buffer.from('KHMACEND'), u64(records), u64(bytes), hmac(prefix(sid, records, 0x54), u64(bytes), prev));
  await out.write(Buffer.concat(sealed));
  await out.sync();
  await out.close();
} else if (mode === 'verify') {
  const stored = Buffer.alloc(L);
  readSync(fd, stored, 0, L, headerBytes.length);
  ok = timingSafeEqual(stored, headerMac);
  // the record MACs of each block, read as the log is read
  let at = headerBytes.length + L;
  let k = -1;
  let left = 0;
  let macs = Buffer.alloc(0);
  let used = 0;
  let prev = headerMac;
  let logBytes = 0;
  const entry = Buffer.alloc(ENTRY);
  const nextBlock = () => {
    readSync(fd, entry, 0, entry.length, at);
    const count = Number(entry.readBigUInt64BE(16));
    left = count - (k < 0 ? 0 : checkpoints[k].records);
    k++;
    macs = Buffer.alloc(left * L);
    readSync(fd, macs, 0, macs.length, at + entry.length);
    at += entry.length + macs.length;
    used = 0;
  };
  const endBlock = () => {
    const c = checkpoints[k];
    const mac = checkpointMac(k, c.records, Number(entry.readBigUInt64BE(24)), c.time, prev, macs);
    if (!timingSafeEqual(mac, entry.subarray(MAC_AT)) || Number(entry.readBigUInt64BE(24)) !== logBytes) ok = false;
    if (v3 && !blockDigest(macs).equals(entry.subarray(48, 48 + D))) ok = false;
    prev = mac;
  };
  bytes = await eachLine(logPath, (rec) => {
    while (left === 0) {
      if (k >= 0) endBlock();
      if (k + 1 >= checkpoints.length) {
        ok = false; // more records than the sidecar signed
        records++;
        return;
      }
      nextBlock();
    }
    if (!timingSafeEqual(recordMac(records, rec), macs.subarray(used * L, used * L + L))) ok = false;
    used++;
    left--;
    records++;
    logBytes += rec.length;
  });
  if (k >= 0 && left === 0) endBlock();
  while (k + 1 < checkpoints.length) {
    nextBlock();
    if (left !== 0) ok = false; // signed records missing from the log
    endBlock();
  }
  const trailer = Buffer.alloc(24 + L);
  readSync(fd, trailer, 0, trailer.length, size - trailer.length);
  const tmac = hmac(prefix(sid, records, 0x54), u64(bytes), prev);
  ok =
    ok &&
    at + trailer.length === size &&
    Number(trailer.readBigUInt64BE(8)) === records &&
    timingSafeEqual(tmac, trailer.subarray(24));
  closeSync(fd);
} else {
  console.error('usage: logs-baseline.js sign LOG OUT --key-hex HEX --like SIDECAR | verify LOG SIDECAR --key-hex HEX');
  process.exit(2);
}
const cpu = process.cpuUsage(c0);
console.log(
  JSON.stringify({ mode, records, bytes, ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, ok }),
);
