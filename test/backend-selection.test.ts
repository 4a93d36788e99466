/**
 * Backend selection and fallback: native missing (KMS_HMAC_PREBUILD points
 * the loader at an empty directory) must select WASM and say why; with
 * KMS_HMAC_REQUIRE_NATIVE=1 the same situation is an error. Each test
 * re-imports src/backend/index.ts after stubbing the environment, so the
 * process-wide selection starts fresh.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

type Selection = typeof import('../src/backend/index.js');

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const emptyDir = mkdtempSync(join(tmpdir(), 'kms-hmac-no-native-'));
afterAll(() => rmSync(emptyDir, { recursive: true, force: true }));

async function freshSelection(env: Record<string, string | undefined>): Promise<Selection> {
  vi.unstubAllEnvs();
  for (const name of ['KMS_HMAC_BACKEND', 'KMS_HMAC_REQUIRE_NATIVE', 'KMS_HMAC_PREBUILD']) vi.stubEnv(name, undefined);
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  vi.resetModules();
  const mod: Selection = await import('../src/backend/index.js');
  mod.resetBackendSelection();
  return mod;
}

beforeEach(() => {
  // The fallback warning is expected here; keep it out of the test output.
  vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  vi.resetModules();
});

describe('native missing', () => {
  it('falls back to wasm-simd and reports the native load error', async () => {
    const sel = await freshSelection({ KMS_HMAC_PREBUILD: emptyDir });
    const info = sel.backendInfo();
    expect(info.name).toBe('wasm-simd');
    expect(info.simd).toBe(true);
    expect(info.details.simd).toBe(true);
    expect(info.selectedBy).toBe('auto');
    expect(info.skipped).toHaveLength(1);
    expect(info.skipped[0]!.name).toBe('native');
    expect(info.skipped[0]!.reason.length).toBeGreaterThan(0);
    expect(sel.getBackend().name).toBe('wasm-simd');
    expect(process.emitWarning).toHaveBeenCalledWith(
      expect.stringContaining('using wasm-simd'),
      expect.objectContaining({ code: 'KMS_HMAC_FALLBACK' }),
    );
    // The fallback backend works.
    const key = sel.getBackend().createKey('HMAC_SHA_256', new TextEncoder().encode('Jefe'));
    const out = new Uint8Array(32);
    key.macInto(new TextEncoder().encode('what do ya want for nothing?'), out, 0);
    expect(Buffer.from(out).toString('hex')).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    key.destroy();
  });

  it('is an error with KMS_HMAC_REQUIRE_NATIVE=1', async () => {
    const sel = await freshSelection({ KMS_HMAC_PREBUILD: emptyDir, KMS_HMAC_REQUIRE_NATIVE: '1' });
    expect(() => sel.backendInfo()).toThrow(/native backend required/);
    expect(() => sel.getBackend()).toThrow(/native backend required/);
  });

  it('is an error with the requireNative option', async () => {
    const sel = await freshSelection({ KMS_HMAC_PREBUILD: emptyDir });
    expect(() => sel.getBackend({ requireNative: true })).toThrow(/native backend required/);
    expect(() => sel.loadBackend('native')).toThrow();
  });

  it('is an error from createMacKey and new KmsHmacClient given requireNative, and only with it', async () => {
    await freshSelection({ KMS_HMAC_PREBUILD: emptyDir });
    const { createMacKey, KmsHmacClient } = await import('../src/index.js');
    const material = new Uint8Array(32);
    expect(() => createMacKey('HMAC_SHA_256', material, { requireNative: true })).toThrow(/native backend required/);
    expect(() => new KmsHmacClient({ requireNative: true })).toThrow(/native backend required/);
    const key = createMacKey('HMAC_SHA_256', material);
    expect(key.backend).toBe('wasm-simd');
    key.destroy();
    const client = new KmsHmacClient();
    const { KeyId } = (await client.createKey({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' })).KeyMetadata;
    await expect(
      client.generateMac({ KeyId, MacAlgorithm: 'HMAC_SHA_256', Message: material }),
    ).resolves.toHaveProperty('Mac');
    await client.close();
  });

  it('falls back to wasm-scalar when SIMD128 is not supported, listing both reasons', async () => {
    const { WASM_SIMD_BASE64 } = await import('../src/backend/wasm-binaries.js');
    const simdBytes = Buffer.from(WASM_SIMD_BASE64, 'base64');
    const realValidate = WebAssembly.validate.bind(WebAssembly);
    vi.spyOn(WebAssembly, 'validate').mockImplementation((bytes) =>
      Buffer.from(bytes as Uint8Array).equals(simdBytes) ? false : realValidate(bytes),
    );
    const sel = await freshSelection({ KMS_HMAC_PREBUILD: emptyDir });
    const info = sel.backendInfo();
    expect(info.name).toBe('wasm-scalar');
    expect(info.simd).toBe(false);
    expect(info.skipped.map((s) => s.name)).toEqual(['native', 'wasm-simd']);
    expect(info.skipped[1]!.reason).toMatch(/SIMD128/);
  });
});

describe('explicit choices', () => {
  it('KMS_HMAC_BACKEND=wasm-scalar selects it (env)', async () => {
    const sel = await freshSelection({ KMS_HMAC_BACKEND: 'wasm-scalar' });
    expect(sel.backendInfo()).toMatchObject({ name: 'wasm-scalar', simd: false, selectedBy: 'env', skipped: [] });
  });

  it('KMS_HMAC_BACKEND=wasm selects the best WASM build without trying native', async () => {
    const sel = await freshSelection({ KMS_HMAC_BACKEND: 'wasm', KMS_HMAC_PREBUILD: emptyDir });
    expect(sel.backendInfo()).toMatchObject({ name: 'wasm-simd', simd: true, selectedBy: 'env', skipped: [] });
  });

  it('an explicit option beats the environment', async () => {
    const sel = await freshSelection({ KMS_HMAC_BACKEND: 'wasm-simd' });
    expect(sel.getBackend({ backend: 'wasm-scalar' }).name).toBe('wasm-scalar');
    expect(sel.backendInfo().name).toBe('wasm-simd');
  });

  it('an unknown KMS_HMAC_BACKEND value is a clear error', async () => {
    const sel = await freshSelection({ KMS_HMAC_BACKEND: 'gpu' });
    expect(() => sel.backendInfo()).toThrow(/KMS_HMAC_BACKEND must be one of/);
  });

  it('KMS_HMAC_BACKEND=native with native missing fails instead of falling back', async () => {
    const sel = await freshSelection({ KMS_HMAC_BACKEND: 'native', KMS_HMAC_PREBUILD: emptyDir });
    expect(() => sel.backendInfo()).toThrow();
  });
});

describe('in a separate process (built dist/)', () => {
  const distIndex = join(ROOT, 'dist/backend/index.js');
  const run = (env: Record<string, string>) =>
    spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { backendInfo } from ${JSON.stringify(distIndex)};
         try { const i = backendInfo(); console.log(JSON.stringify({ name: i.name, skipped: i.skipped })); }
         catch (e) { console.log(JSON.stringify({ error: e.message })); }`,
      ],
      {
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, KMS_HMAC_BACKEND: '', KMS_HMAC_REQUIRE_NATIVE: '', ...env },
      },
    );

  it.skipIf(!existsSync(distIndex))('native dir empty: WASM chosen, reason reported, one-line warning', () => {
    const r = run({ KMS_HMAC_PREBUILD: emptyDir });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.name).toBe('wasm-simd');
    expect(out.skipped[0].name).toBe('native');
    expect(r.stderr).toMatch(/KMS_HMAC_FALLBACK|native backend unavailable/);
  });

  it.skipIf(!existsSync(distIndex))('native dir empty + KMS_HMAC_REQUIRE_NATIVE=1: error', () => {
    const r = run({ KMS_HMAC_PREBUILD: emptyDir, KMS_HMAC_REQUIRE_NATIVE: '1' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).error).toMatch(/native backend required/);
  });
});

describe('the algorithm table', () => {
  it('is what both engines load with, and an engine numbering otherwise is refused', async () => {
    const { createNativeBackend, loadNativeBinding } = await import('../src/backend/native.js');
    const { checkAlgorithmTable } = await import('../src/backend/types.js');
    const binding = loadNativeBinding();
    expect(createNativeBackend(binding).name).toBe('native');
    const swapped = { ...binding, macLengths: [28, 32, 64, 48] };
    expect(() => createNativeBackend(swapped)).toThrow(
      /native addon does not match the algorithm table.*HMAC_SHA_384, HMAC_SHA_512/,
    );
    expect(() =>
      checkAlgorithmTable(
        'an engine',
        5,
        () => 32,
        () => 64,
      ),
    ).toThrow(/5 algorithms for 4/);
  });
});
