/**
 * The Dockerfile, checked without Docker (no daemon can run where the tests
 * run, and hadolint is neither in Debian's archive nor on the npm registry
 * as a binary): dockerfile-utils (the Docker language server's validator)
 * finds no problem, and the essentials the README promises are there:
 * node:24-slim stages, the prebuild, a non-root user, a HEALTHCHECK on
 * /healthz through the metrics port the command line opens, SIGTERM for the
 * drain, and no secret baked into the image.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DockerfileParser } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { ROOT } from './server-helpers.js';

const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const file = DockerfileParser.parse(text);
const instructions = file.getInstructions();
const stages = file.getFROMs();
const final = instructions.filter((i) => i.getRange().start.line > stages.at(-1)!.getRange().start.line);
const args = (keyword: string, from = instructions) =>
  from.filter((i) => i.getKeyword() === keyword).map((i) => i.getArgumentsContent() ?? '');

describe('Dockerfile', () => {
  it('has no problem dockerfile-utils can find', () => {
    expect(validate(text).map((d) => `${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('builds on node:24-slim, makes the prebuild, and ships it without dev dependencies', () => {
    expect(stages.map((s) => `${s.getImageName()}:${s.getImageTag()}`)).toEqual(['node:24-slim', 'node:24-slim']);
    const run = args('RUN').join('\n');
    expect(run).toMatch(/npm ci/);
    expect(run).toMatch(/scripts\/prebuild\.js --arch/);
    expect(run).toMatch(/npm prune --omit=dev/);
    const fromBuild = final.filter((i) => i.getKeyword() === 'COPY' && i.getTextContent().includes('--from=build'));
    expect(fromBuild.map((i) => i.getArgumentsContent())).toContain('/src/prebuilds ./prebuilds');
    // Everything the build stage copies from the context exists (and .dockerignore does not drop it).
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').filter(Boolean);
    const fromContext = instructions.filter(
      (i) => i.getKeyword() === 'COPY' && !i.getTextContent().includes('--from='),
    );
    for (const c of fromContext.map((i) => i.getArgumentsContent() ?? '')) {
      for (const src of c.split(/\s+/).slice(0, -1)) {
        expect(existsSync(join(ROOT, src)), src).toBe(true);
        expect(ignored, src).not.toContain(src.replace(/^\.\//, ''));
      }
    }
  });

  it('runs as the unprivileged node user, drains on SIGTERM, and checks /healthz on the port its command opens', () => {
    expect(args('USER', final)).toEqual(['node']);
    expect(args('STOPSIGNAL')).toEqual(['SIGTERM']);
    const health = args('HEALTHCHECK').join(' ');
    expect(health).toMatch(/http:\/\/127\.0\.0\.1:9464\/healthz/);
    const cmd = JSON.parse(args('CMD', final)[0]!.replace(/\\\n/g, '')) as string[];
    const entry = JSON.parse(args('ENTRYPOINT', final)[0]!) as string[];
    expect(entry).toEqual(['node', '/app/bin/kms-hmac.js', 'serve']);
    const flag = (name: string) => cmd[cmd.indexOf(name) + 1];
    expect(flag('--metrics-port')).toBe('9464');
    expect(flag('--metrics-host')).toBe('0.0.0.0');
    expect(flag('--host')).toBe('0.0.0.0');
    expect(cmd).toContain('--tls-cert'); // beyond loopback: TLS, not --insecure-http
    expect(cmd).not.toContain('--insecure-http');
    expect(Number(flag('--drain-timeout'))).toBeLessThan(10_000); // docker stop's default grace
    expect(args('EXPOSE', final).join(' ').split(/\s+/)).toEqual(['4599', '9464']);
  });

  it('bakes in no secret: no credentials or passphrase in ENV or ARG', () => {
    for (const a of [...args('ENV'), ...args('ARG')]) expect(a).not.toMatch(/SECRET|PASSPHRASE|PASSWORD|KEY_ID/i);
  });
});
