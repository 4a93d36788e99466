/**
 * `kms-hmac sign --follow FILE`: signs a live log until SIGTERM or SIGINT,
 * then closes the sidecar with its trailer and exits 0 (follow.ts in
 * src/logs does the work; docs/live-logs.md shows a systemd unit and
 * logrotate setups). Progress goes to stderr — a line at start, at each
 * rotation and at stop, and a status line a minute — or, with --json, every
 * event (each checkpoint with the signer's lag) as a JSON line on stdout.
 */
import type { Framing } from '../logs/format.js';
import { FollowError, followLog, type FollowEvent } from '../logs/follow.js';
import { engineFromClient } from '../logs/kms-engine.js';
import { checkpointSink } from '../logs/sink.js';
import { CliError, EXIT_VERIFY_FAILED, jsonReplacer, withClient } from './common.js';
import type { SignCliFlags } from './logs.js';

import { count } from './numbers.js';

const STATUS_EVERY_MS = 60_000;

/** `flags` as parsed, with the key's region and account settled. */
export async function follow(
  file: string,
  sidecar: string,
  framing: Framing,
  forwardSecure: boolean,
  flags: SignCliFlags,
): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const sink = flags.checkpointsOut === undefined ? undefined : await checkpointSink(flags.checkpointsOut);
  try {
    await withClient(flags, async (client) => {
      const engine = await engineFromClient(client, flags.keyId, flags.algorithm);
      await followLog(file, {
        engine,
        sidecar,
        framing,
        batchSize: flags.batchSize,
        checkpointEvery: flags.checkpointEvery,
        checkpointIntervalMs: flags.checkpointInterval * 1000,
        onCheckpoint: sink?.write,
        forwardSecure,
        epochMs: flags.epoch,
        signal: stop.signal,
        onEvent: flags.json
          ? (e) => process.stdout.write(`${JSON.stringify(eventJson(e), jsonReplacer)}\n`)
          : humanReporter(),
      });
    });
  } catch (err) {
    if (err instanceof FollowError) throw new CliError(err.message, EXIT_VERIFY_FAILED, 'FollowError');
    throw err;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await sink?.close();
  }
}

function eventJson(e: FollowEvent): object {
  if (e.type !== 'checkpoint') return { event: e.type, ...e, type: undefined };
  const a = e.anchor;
  return {
    event: 'checkpoint',
    streamId: a.streamId,
    checkpoint: a.checkpoint,
    records: a.records,
    logBytes: a.logBytes,
    time: a.time,
    ...(a.epoch !== undefined ? { epoch: a.epoch } : {}),
    lagBytes: e.lagBytes,
  };
}

function humanReporter(): (e: FollowEvent) => void {
  let lastStatus = Date.now();
  const say = (s: string) => process.stderr.write(`kms-hmac: ${s}\n`);
  return (e) => {
    switch (e.type) {
      case 'start':
        say(
          e.resumed
            ? `following ${e.log}: resumed ${e.sidecar} after checkpoint ${e.resumed.checkpoint} (${count(e.resumed.records)} records signed; the log still holds them all)`
            : `following ${e.log}: ${e.restart ? `sidecar ${e.sidecar}, new stream` : `new sidecar ${e.sidecar}, stream`} ${e.streamId}${e.keys === 'forward-secure' ? ' (forward-secure)' : ''}${e.previous ? `, continuing stream ${e.previous}` : ''}`,
        );
        break;
      case 'rotate':
        say(
          `${e.log} was ${e.how === 'rename' ? 'rotated (renamed)' : 'truncated (copytruncate)'}${e.whileStopped ? ' while the signer was stopped' : ''}: ` +
            `${count(e.records)} records signed, sidecar closed as ${e.sidecar}${e.rotatedLog ? ` (for ${e.rotatedLog})` : ''}`,
        );
        break;
      case 'checkpoint':
        if (Date.now() - lastStatus >= STATUS_EVERY_MS) {
          lastStatus = Date.now();
          say(
            `signed through record ${count(e.anchor.records)} (checkpoint ${e.anchor.checkpoint}, ${e.anchor.time}); ${count(e.lagBytes)} bytes behind`,
          );
        }
        break;
      case 'stop':
        say(
          `stopped: ${e.summary.sidecar} closed with a trailer, ${count(e.summary.records)} records in ${count(e.summary.checkpoints)} checkpoints`,
        );
        break;
    }
  };
}
