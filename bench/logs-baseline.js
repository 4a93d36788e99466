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

if (mode === 'sign') {
  const { fd, header, headerBytes } = readHeader(arg('--like'));
  closeSync(fd);
  const alg = header.macAlgorithm === 'HMAC_SHA_512' ? 'sha512' : header.macAlgorithm === 'HMAC_SHA_384' ? 'sha384' : header.macAlgorithm === 'HMAC_SHA_224' ? 'sha224' : 'sha256';
  const digest = header.digest === 'SHA-512' ? 'sha512' : 'sha256';
  const sid = Buffer.from(header.streamId, 'hex');
  const out = await open(outPath, 'w');
  await out.write(headerBytes);
  await out.write(createHmac(alg, key).update(prefix(sid, 0, 0x48)).update(headerBytes).digest());
  let pending = [];
  bytes = await eachLine(
    logPath,
    (rec) => {
      const h = createHmac(alg, key);
      if (rec.length <= RAW_MAX) h.update(prefix(sid, records, 0)).update(rec);
      else h.update(prefix(sid, records, 1)).update(createHash(digest).update(rec).digest());
      pending.push(h.digest());
      records++;
    },
    async () => {
      await out.write(Buffer.concat(pending));
      pending = [];
    },
  );
  await out.write(Buffer.concat(pending));
  await out.write(Buffer.concat([Buffer.from('KHMACEND'), u64(records), u64(bytes)]));
  await out.write(createHmac(alg, key).update(prefix(sid, records, 0x54)).update(u64(bytes)).digest());
  await out.sync();
  await out.close();
} else if (mode === 'verify') {
  const { fd, size, header, headerBytes } = readHeader(outPath);
  const alg = header.macAlgorithm === 'HMAC_SHA_512' ? 'sha512' : header.macAlgorithm === 'HMAC_SHA_384' ? 'sha384' : header.macAlgorithm === 'HMAC_SHA_224' ? 'sha224' : 'sha256';
  const digest = header.digest === 'SHA-512' ? 'sha512' : 'sha256';
  const L = header.macLength;
  const sid = Buffer.from(header.streamId, 'hex');
  const at = headerBytes.length;
  const hmac = Buffer.alloc(L);
  readSync(fd, hmac, 0, L, at);
  ok = timingSafeEqual(hmac, createHmac(alg, key).update(prefix(sid, 0, 0x48)).update(headerBytes).digest());
  const trailer = Buffer.alloc(24 + L);
  readSync(fd, trailer, 0, trailer.length, size - trailer.length);
  const count = Number(trailer.readBigUInt64BE(8));
  // record MACs read in blocks of 4096 as the log is read
  let block = Buffer.alloc(0);
  let blockStart = 0;
  bytes = await eachLine(logPath, (rec) => {
    if (records >= count) {
      ok = false;
      records++;
      return;
    }
    if (records - blockStart >= block.length / L) {
      blockStart = records;
      const n = Math.min(4096, count - records);
      block = Buffer.alloc(n * L);
      readSync(fd, block, 0, block.length, at + L + records * L);
    }
    const h = createHmac(alg, key);
    if (rec.length <= RAW_MAX) h.update(prefix(sid, records, 0)).update(rec);
    else h.update(prefix(sid, records, 1)).update(createHash(digest).update(rec).digest());
    const off = (records - blockStart) * L;
    if (!timingSafeEqual(h.digest(), block.subarray(off, off + L))) ok = false;
    records++;
  });
  const tmac = createHmac(alg, key).update(prefix(sid, count, 0x54)).update(trailer.subarray(16, 24)).digest();
  ok = ok && records === count && timingSafeEqual(tmac, trailer.subarray(24));
  closeSync(fd);
} else {
  console.error('usage: logs-baseline.js sign LOG OUT --key-hex HEX --like SIDECAR | verify LOG SIDECAR --key-hex HEX');
  process.exit(2);
}
const cpu = process.cpuUsage(c0);
console.log(JSON.stringify({ mode, records, bytes, ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, ok }));
