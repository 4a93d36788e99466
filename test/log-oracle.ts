/**
 * An independent implementation of docs/log-format.md (every version), in
 * plain node:crypto and written from the document, not from src/logs: the
 * tests compare its bytes with the signer's, and use it to make version-1
 * and version-2 sidecars now that the signer writes version 3, and to derive
 * a forward-secure stream's keys. Line framing, HMAC-SHA-256 only.
 */
import { createHash, createHmac } from 'node:crypto';

export function lines(log: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (let i = log.indexOf(10); i >= 0; i = log.indexOf(10, pos)) {
    out.push(log.subarray(pos, i + 1));
    pos = i + 1;
  }
  if (pos < log.length) out.push(log.subarray(pos));
  return out;
}

const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

export class Oracle {
  constructor(
    readonly key: Buffer,
    readonly sid: Buffer,
  ) {}
  mac(n: number, kind: number, ...payload: Buffer[]): Buffer {
    const h = createHmac('sha256', this.key).update(Buffer.concat([this.sid, u64(n), Buffer.from([kind])]));
    for (const p of payload) h.update(p);
    return h.digest();
  }
  record(seq: number, rec: Buffer): Buffer {
    return rec.length <= 4071
      ? this.mac(seq, 0x00, rec)
      : this.mac(seq, 0x01, createHash('sha256').update(rec).digest());
  }
}

export function headerBytes(json: object): Buffer {
  const j = Buffer.from(JSON.stringify(json));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(j.length);
  return Buffer.concat([Buffer.from('KHMACLOG'), len, j]);
}

/** A complete version-1 sidecar (HMAC_SHA_256). */
export function v1Sidecar(log: Buffer, key: Buffer, sid: Buffer, keyArn: string): Buffer {
  const o = new Oracle(key, sid);
  const head = headerBytes({
    format: 'kms-hmac-log',
    version: 1,
    keyArn,
    macAlgorithm: 'HMAC_SHA_256',
    macLength: 32,
    framing: { type: 'line' },
    streamId: sid.toString('hex'),
    digest: 'SHA-256',
    rawRecordMax: 4071,
    createdAt: '2026-01-01T00:00:00.000Z',
  });
  const recs = lines(log);
  return Buffer.concat([
    head,
    o.mac(0, 0x48, head),
    ...recs.map((r, i) => o.record(i, r)),
    Buffer.from('KHMACEND'),
    u64(recs.length),
    u64(log.length),
    o.mac(recs.length, 0x54, u64(log.length)),
  ]);
}

/**
 * The version-2 or version-3 sidecar (one kms-keyed stream) the signer
 * should have written for `log`, given its header bytes (which name the
 * version), checkpoints every `every` records (and a last one for the rest),
 * and the times its checkpoints state (read back by `timeOf(k)`). Version 3
 * adds the epoch (0) to a checkpoint's fields and writes its digest out.
 */
export function chainedSidecar(
  log: Buffer,
  key: Buffer,
  head: Buffer,
  every: number,
  timeOf: (k: number) => number,
): Buffer {
  const json = JSON.parse(head.subarray(12).toString());
  const v3 = json.version >= 3;
  const o = new Oracle(key, Buffer.from(json.streamId, 'hex'));
  const headerMac = o.mac(0, 0x48, head);
  const recs = lines(log);
  const parts = [head, headerMac];
  let prev = headerMac;
  let bytes = 0;
  let k = 0;
  for (let first = 0; first < recs.length || k === 0; first += every, k++) {
    const block = recs.slice(first, first + every);
    const macs = Buffer.concat(block.map((r, i) => o.record(first + i, r)));
    bytes += block.reduce((s, r) => s + r.length, 0);
    const count = first + block.length;
    const fields = Buffer.concat([u64(count), u64(bytes), u64(timeOf(k)), ...(v3 ? [u64(0)] : [])]);
    const digest = createHash('sha256').update(macs).digest();
    const mac = o.mac(k, 0x43, fields, prev, digest);
    parts.push(Buffer.from('KHMACCKP'), u64(k), fields, ...(v3 ? [digest] : []), mac, macs);
    prev = mac;
  }
  parts.push(Buffer.from('KHMACEND'), u64(recs.length), u64(bytes), o.mac(recs.length, 0x54, u64(bytes), prev));
  return Buffer.concat(parts);
}

/**
 * A forward-secure stream's MAC key of epoch `epoch`, from the KMS key's
 * material, the stream id and the nonce, as the format defines it:
 * S0 = HMAC(kms, sid|0|'S'|nonce), S(e+1) = HMAC(S(e), sid|e+1|'R'), K(e) = HMAC(S(e), sid|e|'K').
 */
export function epochKey(
  kmsKey: Buffer,
  sid: Buffer,
  nonce: Buffer,
  epoch: number,
): { seed: Buffer; state: Buffer; key: Buffer } {
  const h = (k: Buffer, n: number, kind: number, ...p: Buffer[]) =>
    createHmac('sha256', k)
      .update(Buffer.concat([sid, u64(n), Buffer.from([kind]), ...p]))
      .digest();
  const seed = h(kmsKey, 0, 0x53, nonce);
  let state = seed;
  for (let e = 1; e <= epoch; e++) state = h(state, e, 0x52);
  return { seed, state, key: h(state, epoch, 0x4b) };
}

/** The blocks of a version-2 or -3 sidecar's first stream: each checkpoint's fields and where its block ends. */
export function blocks(
  sc: Buffer,
): { index: number; records: number; logBytes: number; time: number; epoch: number; at: number; end: number }[] {
  const j = sc.readUInt32BE(8);
  const header = JSON.parse(sc.subarray(12, 12 + j).toString()) as {
    macLength: number;
    version: number;
    digest: string;
  };
  const L = header.macLength;
  const entry = header.version >= 3 ? 48 + (header.digest === 'SHA-512' ? 64 : 32) + L : 40 + L;
  const out = [];
  let pos = 12 + j + L;
  let records = 0;
  while (pos + entry <= sc.length && sc.subarray(pos, pos + 8).toString() === 'KHMACCKP') {
    const count = Number(sc.readBigUInt64BE(pos + 16));
    const end = pos + entry + (count - records) * L;
    if (end > sc.length) break;
    out.push({
      index: Number(sc.readBigUInt64BE(pos + 8)),
      records: count,
      logBytes: Number(sc.readBigUInt64BE(pos + 24)),
      time: Number(sc.readBigUInt64BE(pos + 32)),
      epoch: header.version >= 3 ? Number(sc.readBigUInt64BE(pos + 40)) : 0,
      at: pos,
      end,
    });
    pos = end;
    records = count;
  }
  return out;
}
