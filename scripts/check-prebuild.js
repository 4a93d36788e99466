#!/usr/bin/env node
// Checks an installed kms-hmac (its dist/ and the prebuild for this platform)
// with whatever Node runs this script: the official arm64 Node under
// qemu-user (npm run test:arm64), or the native Node of a release runner.
//
//   node scripts/check-prebuild.js --package DIR [--messages 10000] [--seed S]
//
// DIR is the installed package (consumer/node_modules/kms-hmac). The check:
//   - the native backend loads from DIR/prebuilds/<platform>-<arch>/ (no
//     build/ directory: nothing was compiled) and passes its self-test;
//   - RFC 4231 test cases 1-7 for all four algorithms;
//   - this Node's own node:crypto agrees on --messages random messages
//     (default 10,000) spread over the four algorithms: random keys (0 bytes,
//     around the block size, longer than a block: those are hashed first) and
//     message lengths 0..4096, each MACed alone, in a packed batch, as an
//     array batch, and (every fourth group) as an async packed batch, and
//     verified packed with one MAC per group altered.
// The random stream is AES-CTR keyed by the seed: a failure prints the seed
// that reproduces it. Exits non-zero on the first disagreement.
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const KMS_MESSAGE_MAX = 4096;
const ALGORITHMS = { HMAC_SHA_224: 'sha224', HMAC_SHA_256: 'sha256', HMAC_SHA_384: 'sha384', HMAC_SHA_512: 'sha512' };

/** @returns {{ packageDir: string, messages: number, seed: string }} */
function parseArgs(argv) {
  /** @type {{ packageDir: string | undefined, messages: number, seed: string }} */
  const options = { packageDir: undefined, messages: 10_000, seed: randomBytes(8).toString('hex') };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--package') options.packageDir = resolve(argv[++i]);
    else if (argv[i] === '--messages') options.messages = Number(argv[++i]);
    else if (argv[i] === '--seed') options.seed = argv[++i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!options.packageDir) throw new Error('usage: check-prebuild.js --package DIR [--messages N] [--seed S]');
  return { ...options, packageDir: options.packageDir };
}

/** A reproducible byte stream: AES-256-CTR over zeros, keyed by the seed. */
function randomStream(seed) {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  const bytes = (n) => cipher.update(Buffer.alloc(n));
  const below = (n) => bytes(4).readUInt32LE(0) % n;
  const pick = (list) => list[below(list.length)];
  return { bytes, below, pick };
}

function fail(message) {
  throw new Error(message);
}

function expectHex(actual, expected, what) {
  const hex = Buffer.from(actual).toString('hex');
  if (hex !== expected) fail(`${what}: got ${hex}, want ${expected}`);
}

async function main() {
  const { packageDir, messages, seed } = parseArgs(process.argv.slice(2));
  const platformArch = `${process.platform}-${process.arch}`;
  const started = performance.now();

  // Loads: the prebuild for this platform, nothing compiled.
  if (existsSync(join(packageDir, 'build'))) fail(`${packageDir}/build exists: the addon was compiled at install`);
  const packageRequire = createRequire(join(packageDir, 'package.json'));
  const addonPath = packageRequire('node-gyp-build').resolve(packageDir);
  if (!addonPath.startsWith(join(packageDir, 'prebuilds', platformArch))) {
    fail(`node-gyp-build chose ${addonPath}, not a prebuild in prebuilds/${platformArch}/`);
  }
  const kms = await import(pathToFileURL(join(packageDir, 'dist', 'index.js')).href);
  const native = kms.loadBackend('native'); // loads and self-tests, or throws why not
  console.log(`node ${process.version} ${platformArch}, OpenSSL ${process.versions.openssl}`);
  console.log(`native backend from ${addonPath}: ${JSON.stringify(native.details)}`);

  // RFC 4231, all seven cases.
  const rfc = JSON.parse(readFileSync(new URL('../test/fixtures/rfc4231.json', import.meta.url), 'utf8'));
  for (const { testCase, keyHex, dataHex, macHex } of rfc.cases) {
    for (const [algorithm, expected] of Object.entries(macHex)) {
      const key = kms.createMacKey(algorithm, Buffer.from(keyHex, 'hex'), { backend: 'native' });
      expectHex(key.mac(Buffer.from(dataHex, 'hex')), expected, `RFC 4231 case ${testCase} ${algorithm}`);
      key.destroy();
    }
  }
  console.log(`RFC 4231: ${rfc.cases.length} cases x 4 algorithms OK`);

  // Random messages against node:crypto.
  const random = randomStream(seed);
  const perAlgorithm = Object.fromEntries(Object.keys(ALGORITHMS).map((a) => [a, 0]));
  let done = 0;
  for (let group = 0; done < messages; group++) {
    const algorithm = Object.keys(ALGORITHMS)[group % 4];
    const digest = ALGORITHMS[algorithm];
    const block = kms.BLOCK_LENGTH[algorithm];
    const keyLength = random.pick([0, 1, 32, block - 1, block, block + 1, 131, 2 * block + 5, random.below(300)]);
    const keyBytes = random.bytes(keyLength);
    const count = Math.min(1 + random.below(64), messages - done);
    const lengths = Array.from({ length: count }, () =>
      random.below(4) === 0
        ? random.pick([0, 1, 55, 56, 63, 64, 111, 112, 127, 128, KMS_MESSAGE_MAX])
        : random.below(KMS_MESSAGE_MAX + 1),
    );
    const batch = lengths.map((n) => random.bytes(n));
    const expected = batch.map((m) => createHmac(digest, keyBytes).update(m).digest());
    const where = (i) =>
      `${algorithm}, key ${keyLength} bytes, message ${batch[i].length} bytes (seed ${seed}, group ${group}, index ${i})`;

    const key = kms.createMacKey(algorithm, keyBytes, { backend: 'native' });
    const { data, offsets } = kms.packMessages(batch);
    const packed = key.macPacked(data, offsets);
    const array = key.macBatch(batch);
    const asyncPacked = group % 4 === 3 ? await key.macPackedAsync(data, offsets) : undefined;
    const macLength = key.macLength;
    for (let i = 0; i < count; i++) {
      const want = expected[i].toString('hex');
      expectHex(key.mac(batch[i]), want, `single ${where(i)}`);
      expectHex(packed.subarray(i * macLength, (i + 1) * macLength), want, `packed ${where(i)}`);
      expectHex(array[i], want, `array batch ${where(i)}`);
      if (asyncPacked)
        expectHex(asyncPacked.subarray(i * macLength, (i + 1) * macLength), want, `async packed ${where(i)}`);
    }
    const macs = Buffer.concat(expected);
    const altered = random.below(count);
    macs[altered * macLength + random.below(macLength)] ^= 1 << random.below(8);
    const verdicts = key.verifyPacked(data, offsets, macs);
    for (let i = 0; i < count; i++) {
      if (verdicts[i] !== (i === altered ? 0 : 1)) fail(`verifyPacked ${where(i)}: got ${verdicts[i]}`);
    }
    key.destroy();
    perAlgorithm[algorithm] += count;
    done += count;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `node:crypto agrees on ${done} random messages (${JSON.stringify(perAlgorithm)}, seed ${seed}) in ${seconds} s`,
  );
}

main().catch((error) => {
  console.error(`check-prebuild: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
});
