// Baseline for `npm run bench:server`: the smallest Node server that does the
// same job with node:crypto — verifies SigV4 (signing key cached per day,
// canonical request from rawHeaders, constant-time compare), parses the JSON
// body and answers GenerateMac with createHmac. No KMS semantics, no key
// store, no logging: the floor a real endpoint is compared against.
// Usage: node bench/server-baseline.js <keyHex> <keyArn> ; prints "listening <port>".
// With --http-only instead of the key: no SigV4, no HMAC, a fixed answer — the floor set by
// node:http and the kernel alone.
import http from 'node:http';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

const SECRET = process.env.KMS_HMAC_SECRET_ACCESS_KEY;
const KEY = process.argv[2] === '--http-only' ? undefined : Buffer.from(process.argv[2], 'hex');
const KEY_ARN = process.argv[3];
const signingKeys = new Map();

function header(raw, name) {
  let out;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase() === name) out = out === undefined ? raw[i + 1].trim() : `${out},${raw[i + 1].trim()}`;
  }
  return out;
}

function verify(req, body) {
  const auth = header(req.rawHeaders, 'authorization');
  const m =
    auth &&
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/kms\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) return false;
  const [, , date, region, signed, sig] = m;
  const amzDate = header(req.rawHeaders, 'x-amz-date');
  if (!amzDate || amzDate.slice(0, 8) !== date) return false;
  let canonical = `POST\n/\n\n`;
  for (const h of signed.split(';')) canonical += `${h}:${header(req.rawHeaders, h) ?? ''}\n`;
  canonical += `\n${signed}\n${createHash('sha256').update(body).digest('hex')}`;
  const sts = `AWS4-HMAC-SHA256\n${amzDate}\n${date}/${region}/kms/aws4_request\n${createHash('sha256').update(canonical).digest('hex')}`;
  let k = signingKeys.get(date + region);
  if (!k) {
    k = createHmac('sha256', `AWS4${SECRET}`).update(date).digest();
    for (const p of [region, 'kms', 'aws4_request']) k = createHmac('sha256', k).update(p).digest();
    signingKeys.set(date + region, k);
  }
  return timingSafeEqual(createHmac('sha256', k).update(sts).digest(), Buffer.from(sig, 'hex'));
}

const HTTP_ONLY = process.argv[2] === '--http-only';
const FIXED = JSON.stringify({
  KeyId: 'arn:aws:kms:us-east-1:111122223333:key/x',
  Mac: `${'A'.repeat(43)}=`,
  MacAlgorithm: 'HMAC_SHA_256',
});

const server = http.createServer({ keepAlive: true, noDelay: true }, (req, res) => {
  if (HTTP_ONLY) {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.1', 'Content-Length': Buffer.byteLength(FIXED) });
      res.end(FIXED);
    });
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (!verify(req, body)) {
      res.writeHead(400, { 'Content-Type': 'application/x-amz-json-1.1' });
      res.end('{"__type":"InvalidSignatureException"}');
      return;
    }
    const input = JSON.parse(body.toString());
    const mac = createHmac('sha256', /** @type {Buffer} */ (KEY))
      .update(Buffer.from(input.Message, 'base64'))
      .digest('base64');
    const out = JSON.stringify({ KeyId: KEY_ARN, Mac: mac, MacAlgorithm: input.MacAlgorithm });
    res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.1', 'Content-Length': Buffer.byteLength(out) });
    res.end(out);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () =>
  console.log(`listening ${/** @type {import('node:net').AddressInfo} */ (server.address()).port}`),
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
