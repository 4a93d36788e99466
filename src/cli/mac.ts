/** `kms-hmac mac generate|verify`: GenerateMac / VerifyMac on one message (a file or stdin). */
import { Command, Option } from 'commander';
import { MAC_ALGORITHMS, type MacAlgorithm } from '../backend/types.js';
import type { KmsHmacClient } from '../client/client.js';
import { LIMITS } from '../kms/limits.js';
import {
  CliError,
  EXIT_USAGE,
  EXIT_VERIFY_FAILED,
  KEYSTORE_OPTION,
  printJson,
  readInput,
  withClient,
  type CommonFlags,
} from './common.js';

interface MacFlags extends CommonFlags {
  keyId: string;
  algorithm?: MacAlgorithm;
  macAlgorithm?: MacAlgorithm;
  json?: boolean;
  mac?: string;
  macFile?: string;
}

async function algorithmFor(c: KmsHmacClient, flags: MacFlags): Promise<MacAlgorithm> {
  const named = flags.algorithm ?? flags.macAlgorithm;
  if (named) return named;
  return (await c.describeKey({ KeyId: flags.keyId })).KeyMetadata.MacAlgorithms[0]!;
}

function base(name: string): Command {
  return (
    new Command(name)
      .argument('[file]', `message file (default: stdin; at most ${LIMITS.message[1]} bytes, as in KMS)`)
      .requiredOption('--key-id <id>', 'key ID, key ARN, alias name or alias ARN')
      .addOption(
        new Option('--algorithm <alg>', "MAC algorithm (default: the key's only algorithm)").choices(MAC_ALGORITHMS),
      )
      // The AWS CLI's name for the same flag, so commands pasted from `aws kms generate-mac` work.
      .addOption(
        new Option('--mac-algorithm <alg>', 'same as --algorithm').choices(MAC_ALGORITHMS).conflicts('algorithm'),
      )
      .option('--json', 'print the KMS response as JSON (blobs in base64)')
      .option(...KEYSTORE_OPTION)
      .option('--region <region>', 'region in key ARNs', 'us-east-1')
      .option('--account-id <id>', 'account id in key ARNs', '111122223333')
  );
}

export function macCommand(): Command {
  const mac = new Command('mac').description('GenerateMac / VerifyMac for one message');
  mac.addCommand(
    base('generate')
      .description('print the MAC of a message (base64, or the GenerateMac response with --json)')
      .action(async (file: string | undefined, flags: MacFlags) =>
        withClient(flags, async (c) => {
          const Message = await readInput(file);
          const out = await c.generateMac({ KeyId: flags.keyId, MacAlgorithm: await algorithmFor(c, flags), Message });
          if (flags.json) printJson(out);
          else process.stdout.write(`${Buffer.from(out.Mac).toString('base64')}\n`);
        }),
      ),
  );
  mac.addCommand(
    base('verify')
      .description('verify a MAC (exit 0 valid, 1 KMSInvalidMacException)')
      .option('--mac <base64>', 'the MAC, base64')
      .option('--mac-file <file>', 'the MAC, raw bytes')
      .action(async (file: string | undefined, flags: MacFlags) =>
        withClient(flags, async (c) => {
          if (!flags.mac && !flags.macFile)
            throw new CliError('mac verify: give --mac BASE64 or --mac-file FILE', EXIT_USAGE);
          if (flags.mac && !/^[A-Za-z0-9+/]*={0,2}$/.test(flags.mac))
            throw new CliError('--mac: not base64', EXIT_USAGE);
          const Mac = flags.mac ? Buffer.from(flags.mac, 'base64') : await readInput(flags.macFile);
          const Message = await readInput(file);
          try {
            const out = await c.verifyMac({
              KeyId: flags.keyId,
              MacAlgorithm: await algorithmFor(c, flags),
              Message,
              Mac,
            });
            if (flags.json) printJson(out);
            else process.stdout.write('valid\n');
          } catch (err) {
            if ((err as Error).name !== 'KMSInvalidMacException') throw err;
            if (flags.json) printJson({ MacValid: false, Error: 'KMSInvalidMacException' });
            throw new CliError('the MAC does not verify', EXIT_VERIFY_FAILED, 'KMSInvalidMacException');
          }
        }),
      ),
  );
  return mac;
}
