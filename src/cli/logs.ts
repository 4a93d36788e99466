/** `kms-hmac sign FILE` / `kms-hmac verify FILE`: log sidecars (docs/log-format.md, docs/live-logs.md). */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { MAC_ALGORITHMS } from '../backend/types.js';
import { parseKeyId } from '../kms/identifiers.js';
import { MAX_CHECKPOINT_EVERY, parseDelimiter, type Framing } from '../logs/format.js';
import { engineFromClient } from '../logs/kms-engine.js';
import { DEFAULT_EPOCH_MS } from '../logs/keys.js';
import { signLog } from '../logs/sign.js';
import { checkpointSink } from '../logs/sink.js';
import { verifyLog, type VerifyReport } from '../logs/verify.js';
import {
  CliError,
  EXIT_USAGE,
  EXIT_VERIFY_FAILED,
  KEYSTORE_OPTION,
  printJson,
  withClient,
  type CommonFlags,
  type SignFlags,
} from './common.js';
import { follow } from './follow.js';
import { count, cpuMs, mb, rate } from './numbers.js';
import { progressBar } from './progress.js';

function posInt(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('expected a positive integer');
  return Number(v);
}

function checkpointEvery(v: string): number {
  const n = posInt(v);
  if (n > MAX_CHECKPOINT_EVERY) throw new InvalidArgumentError(`at most ${MAX_CHECKPOINT_EVERY}`);
  return n;
}

function seconds(v: string): number {
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !(n > 0) || n > 86_400)
    throw new InvalidArgumentError('expected seconds, more than 0 and at most 86400 (e.g. 10 or 0.5)');
  return n;
}

/** A duration: seconds, or a number with s, m or h (15m, 1h, 0.5s); at least 0.1 s, at most a day. */
function duration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(v);
  const ms = m ? Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 's' | 'm' | 'h'] : Number.NaN;
  if (!(ms >= 100 && ms <= 86_400_000))
    throw new InvalidArgumentError('expected a duration from 0.1s to 24h: seconds, or with s, m or h (900, 15m, 1h)');
  return Math.round(ms);
}

/** sign's flags beyond the shared ones. */
export interface SignCliFlags extends SignFlags {
  /** --forward-secure / --no-forward-secure; undefined: the default (on for --follow with --checkpoints-out). */
  forwardSecure?: boolean;
  /** --epoch, in ms. */
  epoch: number;
}

/**
 * Whether new streams are forward-secure. --follow with a sink: by default
 * (docs/log-format.md, "Forward-secure epochs", says why); without a sink,
 * never: the nonce would have nowhere to go but the host's disk.
 */
function forwardSecureOf(flags: SignCliFlags): boolean {
  if (flags.forwardSecure && flags.checkpointsOut === undefined)
    throw new CliError(
      "--forward-secure needs --checkpoints-out: each stream's nonce is shipped there and kept nowhere else (without it the sidecar could never be verified)",
      EXIT_USAGE,
    );
  return flags.forwardSecure ?? (flags.follow === true && flags.checkpointsOut !== undefined);
}
interface VerifyFlags extends CommonFlags {
  sidecar?: string;
  keyId?: string;
  checkpoints?: string;
  maxGap?: number;
  json?: boolean;
  progress: boolean;
  maxIssues: number;
  window: number;
  batchSize?: number;
}

function framingOf(flags: SignFlags): Framing {
  if (flags.delimiter !== undefined) {
    if (flags.framing !== 'line' && flags.framing !== 'delimiter')
      throw new CliError('--delimiter goes with --framing delimiter (or no --framing)', EXIT_USAGE);
    try {
      return { type: 'delimiter', delimiter: parseDelimiter(flags.delimiter) };
    } catch (err) {
      throw new CliError(`--delimiter: ${(err as Error).message}`, EXIT_USAGE);
    }
  }
  if (flags.framing === 'delimiter') throw new CliError('--framing delimiter needs --delimiter', EXIT_USAGE);
  return { type: flags.framing };
}

async function sizeOf(file: string): Promise<number | undefined> {
  if (file === '-') return undefined;
  const s = await stat(file);
  if (!s.isFile()) throw new CliError(`${file} is not a regular file`, EXIT_USAGE);
  return s.size;
}

/**
 * The key's region and account: an ARN given as --key-id names them (so a key
 * made with --region eu-west-1 is found by its ARN alone); else the flags.
 */
function scopeOf<F extends CommonFlags & { keyId?: string }>(flags: F): F {
  const id = parseKeyId(flags.keyId ?? '');
  if (id.kind !== 'keyArn' && id.kind !== 'aliasArn') return flags;
  return { ...flags, region: flags.region ?? id.region, accountId: flags.accountId ?? id.account };
}

function common(cmd: Command): Command {
  return cmd
    .option(...KEYSTORE_OPTION)
    .option('--region <region>', 'region in key ARNs (default: from --key-id when it is an ARN, else us-east-1)')
    .option('--account-id <id>', 'account id in key ARNs (default: from --key-id when it is an ARN, else 111122223333)')
    .option('--json', 'print a JSON report on stdout')
    .option('--no-progress', 'no progress bar (it is shown only on a TTY anyway)')
    .option('--batch-size <n>', 'records per batch MAC call', posInt);
}

export function signCommand(): Command {
  return common(
    new Command('sign')
      .description(
        'MAC every record of a log into a sidecar file (default FILE.mac); --follow signs a live log as it is written',
      )
      .argument('<file>', 'the log (`-` for stdin, then --out is required)')
      .requiredOption('--key-id <id>', 'key ID, key ARN, alias name (alias/logs) or alias ARN')
      .addOption(
        new Option(
          '--algorithm <alg>',
          "MAC algorithm (default: the key's only algorithm, HMAC_SHA_256 for HMAC_256 keys)",
        ).choices(MAC_ALGORITHMS),
      )
      .option('--out <sidecar>', 'sidecar path (default: FILE.mac)')
      .addOption(
        new Option(
          '--framing <framing>',
          'record framing: a line per record, NDJSON (lines checked to be JSON), or --delimiter',
        )
          .choices(['line', 'ndjson', 'delimiter'])
          .default('line'),
      )
      .option(
        '--delimiter <bytes>',
        'record delimiter, 1–64 bytes; escapes \\n \\r \\t \\0 \\\\ \\xHH (implies --framing delimiter)',
      )
      .option(
        '--follow',
        'sign records as they are appended (like tail -F), through log rotation, until SIGTERM or SIGINT; resumes the sidecar after a restart',
      )
      .option('--checkpoint-every <n>', 'a checkpoint every N records (at most 1000000)', checkpointEvery, 10_000)
      .option(
        '--checkpoint-interval <seconds>',
        'and at least this often while records wait (--follow: each one fdatasynced)',
        seconds,
        10,
      )
      .option(
        '--checkpoints-out <path>',
        'also write each checkpoint as a JSON line to PATH (appended) or - (stdout), to keep off this host',
      )
      .option(
        '--forward-secure',
        "forward-secure key epochs: the key makes each stream's seed only, and each epoch's keys are destroyed when the next begins, so an intruder cannot re-sign earlier epochs (needs --checkpoints-out; the default for --follow with --checkpoints-out)",
      )
      .option(
        '--no-forward-secure',
        'MAC every record with the key itself (sidecars verify without the shipped checkpoints)',
      )
      .option(
        '--epoch <duration>',
        'forward-secure: a new key epoch this often (900, 15m, 1h)',
        duration,
        DEFAULT_EPOCH_MS,
      )
      .addHelpText(
        'after',
        '\nExamples:\n  kms-hmac sign app.log --key-id alias/logs\n  kms-hmac sign --follow /var/log/app.log --key-id alias/logs --checkpoints-out /mnt/other/app.checkpoints',
      ),
  ).action(async (file: string, flags: SignCliFlags) => {
    const framing = framingOf(flags);
    const forwardSecure = forwardSecureOf(flags);
    if (file === '-' && (!flags.out || flags.follow))
      throw new CliError(
        flags.follow ? 'sign --follow needs a file, not stdin' : 'sign -: reading stdin needs --out SIDECAR',
        EXIT_USAGE,
      );
    const out = flags.out ?? `${file}.mac`;
    if (file !== '-' && resolve(out) === resolve(file))
      throw new CliError('--out must not be the log itself', EXIT_USAGE);
    if (flags.checkpointsOut === '-' && flags.json)
      throw new CliError('--checkpoints-out - and --json both write to stdout: pick one', EXIT_USAGE);
    if (
      flags.checkpointsOut !== undefined &&
      flags.checkpointsOut !== '-' &&
      [file, out].some((p) => resolve(p) === resolve(flags.checkpointsOut!))
    ) {
      throw new CliError('--checkpoints-out must be neither the log nor the sidecar', EXIT_USAGE);
    }
    if (flags.follow) return follow(file, out, framing, forwardSecure, scopeOf(flags));
    const total = await sizeOf(file);
    const c0 = process.cpuUsage();
    // a finished file's lines are shipped together at the end: synced once, when the sink closes
    const sink =
      flags.checkpointsOut === undefined ? undefined : await checkpointSink(flags.checkpointsOut, { sync: 'close' });
    try {
      await withClient(scopeOf(flags), async (client) => {
        const engine = await engineFromClient(client, flags.keyId, flags.algorithm);
        const bar = progressBar('signing', total, flags.progress && !flags.json);
        const input = file === '-' ? process.stdin : file;
        try {
          const s = await signLog(input, out, {
            engine,
            framing,
            batchSize: flags.batchSize,
            checkpointEvery: flags.checkpointEvery,
            checkpointIntervalMs: flags.checkpointInterval * 1000,
            onCheckpoint: sink?.write,
            forwardSecure,
            epochMs: flags.epoch,
            onProgress: (p) => bar.update(p),
          });
          bar.stop();
          if (flags.json)
            printJson({
              ok: true,
              file,
              ...s,
              recordsPerSecond: Math.round(s.records / (s.elapsedMs / 1000 || 1e-9)),
              cpuMs: cpuMs(c0),
            });
          else {
            process.stdout.write(
              `signed ${count(s.records)} records (${mb(s.bytes)} MB) of ${file} -> ${out}\n` +
                `  key ${s.keyArn}, ${s.macAlgorithm}, framing ${s.framing}, stream ${s.streamId}, ${count(s.checkpoints)} checkpoints${s.keys === 'forward-secure' ? ', forward-secure' : ''}\n` +
                `  ${(s.elapsedMs / 1000).toFixed(2)} s, ${rate(s.records, s.elapsedMs)} records/s, ${mb((s.bytes / s.elapsedMs) * 1000)} MB/s\n`,
            );
          }
        } finally {
          bar.stop();
        }
      });
    } finally {
      await sink?.close();
    }
  });
}

/** "signed through record n (checkpoint k, time t)" for a version-2 report. */
function signedThrough(r: VerifyReport): string {
  const c = r.checkpoint;
  if (r.version < 2) return '';
  const state = r.closed ? 'closed' : 'open: no trailer yet (its signer is running, or stopped before closing it)';
  return c
    ? `signed through record ${count(c.records)} (checkpoint ${c.index}, ${c.time}); ${state}`
    : `no checkpoint yet; ${state}`;
}

export function printReport(file: string, sidecar: string, r: VerifyReport, indent = ''): void {
  const w = (s: string) => process.stdout.write(s.replace(/^(?=.)/gm, indent));
  const through = signedThrough(r);
  const streams = r.streams?.length ?? 1;
  const more = streams > 1 ? ` and ${streams - 1} more after restarts` : '';
  const keyLine = `  key ${r.keyArn}, ${r.macAlgorithm}${r.keys === 'forward-secure' ? ' (forward-secure)' : ''}, framing ${r.framing}, stream ${r.streamId}${more}${r.previous ? ` (continues stream ${r.previous.streamId})` : ''}\n`;
  const anchors = r.anchors
    ? `  ${count(r.anchors.shipped)} shipped checkpoints of ${streams > 1 ? `its ${streams} streams` : 'this stream'} agree${r.anchors.newest ? `; the newest is ${r.anchors.newest.checkpoint}` : ''}\n`
    : '';
  if (r.ok) {
    w(
      `OK: ${file}: all ${count(r.records)} records verified against ${sidecar}\n` +
        (through ? `  ${through}\n` : '') +
        anchors +
        keyLine +
        `  ${(r.elapsedMs / 1000).toFixed(2)} s, ${rate(r.records, r.elapsedMs)} records/s, ${mb((r.bytes / r.elapsedMs) * 1000)} MB/s\n`,
    );
    return;
  }
  const kinds = Object.entries(r.counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  if (r.tampered) w(`TAMPERED: ${file} does not match ${sidecar} (${kinds})\n`);
  else if (r.counts['signer-silent'] + r.counts['clock-backwards'] === 0)
    w(
      `INCOMPLETE: ${file}: ${count(r.counts.unsigned)} records are not signed yet by ${sidecar}; nothing was tampered with\n`,
    );
  else
    w(
      `INCOMPLETE: ${file}: nothing in it or in ${sidecar} was found tampered with, but the shipped checkpoints do not vouch for all of its time (${kinds})\n`,
    );
  if (through) w(`  ${through}\n`);
  for (const i of r.issues) w(`  ${i.message}\n`);
  if (r.issuesTruncated) w(`  … more issues not listed (raise --max-issues)\n`);
  w(
    `  ${count(r.verified)} of ${count(r.records)} records verified in order; ${count(r.signedRecords)} records signed\n`,
  );
}

const VERIFY_KEY_HELP =
  'the key to trust (required): key ID, key ARN, alias name (alias/logs) or alias ARN; a sidecar made with any other key fails';

/** `verify` without --key-id: a usage error that says why the key is not taken from the sidecar. */
function requireKeyId(keyId: string | undefined): string {
  if (keyId) return keyId;
  throw new CliError(
    'verify needs --key-id: the key to trust. The sidecar names the key that made it, but whoever can edit the log can sign it again with a key of their own, so that name proves nothing.',
    EXIT_USAGE,
  );
}

export function verifyCommand(): Command {
  return common(
    new Command('verify')
      .description(
        'check a log against its sidecar with the key you trust: all good, or every modified, inserted, deleted or reordered record, any truncation, and what is not signed yet',
      )
      .argument('<file>', 'the log (`-` for stdin, then --sidecar is required)')
      .usage('<file> --key-id <id> [options]')
      .option('--sidecar <sidecar>', 'sidecar path (default: FILE.mac)')
      .option('--key-id <id>', VERIFY_KEY_HELP)
      .option(
        '--checkpoints <path>',
        'checkpoint lines shipped by sign --checkpoints-out: detects the log and sidecar cut, or replaced by an older copy, together',
      )
      .option(
        '--max-gap <seconds>',
        'with --checkpoints: the longest silence allowed between shipped checkpoints (default: 3 x the heartbeat the signer declares)',
        seconds,
      )
      .option('--max-issues <n>', 'issues listed (counts are always complete)', posInt, 1000)
      .option('--window <n>', 'alignment window: how far a moved or deleted record is searched for', posInt, 1024)
      .addHelpText(
        'after',
        '\nExamples:\n  kms-hmac verify app.log --key-id alias/logs\n  kms-hmac verify app.log --key-id alias/logs --checkpoints /mnt/other/app.checkpoints',
      ),
  ).action(async (file: string, flags: VerifyFlags) => {
    const keyId = requireKeyId(flags.keyId);
    if (file === '-' && !flags.sidecar)
      throw new CliError('verify -: reading stdin needs --sidecar SIDECAR', EXIT_USAGE);
    const sidecar = flags.sidecar ?? `${file}.mac`;
    const total = await sizeOf(file);
    await stat(sidecar);
    if (flags.checkpoints !== undefined) await stat(flags.checkpoints);
    const c0 = process.cpuUsage();
    const bar = progressBar('verifying', total, flags.progress && !flags.json);
    try {
      const input = file === '-' ? process.stdin : file;
      const report = await withClient(scopeOf(flags), (client) =>
        verifyLog(input, sidecar, {
          client,
          keyId,
          checkpoints: flags.checkpoints,
          maxGapMs: flags.maxGap === undefined ? undefined : flags.maxGap * 1000,
          maxIssues: flags.maxIssues,
          window: flags.window,
          batchSize: flags.batchSize,
          onProgress: (p) => bar.update(p),
        }),
      );
      bar.stop();
      if (flags.json) printJson({ file, sidecar, ...report, cpuMs: cpuMs(c0) });
      else printReport(file, sidecar, report);
      if (!report.ok) process.exitCode = EXIT_VERIFY_FAILED;
    } catch (err) {
      if ((err as Error).name === 'SidecarFormatError')
        throw new CliError(`${sidecar}: ${(err as Error).message}`, EXIT_USAGE, 'SidecarFormatError');
      throw err;
    } finally {
      bar.stop();
    }
  });
}
