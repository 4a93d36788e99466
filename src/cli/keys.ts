/** `kms-hmac keys …`: key management through the KMS layer (same shapes and errors as AWS KMS). */
import { constants, createPublicKey, publicEncrypt } from 'node:crypto';
import { Command, Option } from 'commander';
import type { KmsHmacClient } from '../client/client.js';
import { readPassphraseFile, resolvePassphrase } from '../keystore/crypto.js';
import type { DurableKeyStore } from '../keystore/durable.js';
import { describeKeyStore, PASSPHRASE_ENV, PASSPHRASE_FILE_ENV } from '../keystore/index.js';
import {
  CliError,
  EXIT_USAGE,
  KEYSTORE_OPTION,
  keystorePath,
  printJson,
  readInput,
  withClient,
  type CommonFlags,
} from './common.js';

const SPECS = ['HMAC_224', 'HMAC_256', 'HMAC_384', 'HMAC_512'];

function common(cmd: Command): Command {
  return cmd
    .option(...KEYSTORE_OPTION)
    .option('--region <region>', 'region in key ARNs', 'us-east-1')
    .option('--account-id <id>', 'account id in key ARNs', '111122223333');
}

function keyIdOpt(cmd: Command): Command {
  return cmd.requiredOption(
    '--key-id <id>',
    'key ID, key ARN, alias name (alias/…) or alias ARN (aliases are resolved with DescribeKey)',
  );
}

type F = CommonFlags & Record<string, string | boolean | undefined>;

/**
 * EnableKey, DisableKey, Schedule/CancelKeyDeletion and the import calls take
 * only a key ID or key ARN in KMS; the CLI also accepts an alias by resolving
 * it with DescribeKey first (the KMS call then sees the key ID).
 */
async function resolveKeyId(c: KmsHmacClient, keyId: string): Promise<string> {
  if (!keyId.startsWith('alias/') && !/^arn:[^:]+:kms:[^:]*:[^:]*:alias\//.test(keyId)) return keyId;
  return (await c.describeKey({ KeyId: keyId })).KeyMetadata.KeyId;
}

function act(fn: (client: KmsHmacClient, flags: F) => Promise<void>) {
  return async (flags: F) => withClient(flags, (c) => fn(c, flags));
}

export function keysCommand(): Command {
  const keys = new Command('keys').description('create and manage HMAC keys in the local key store');

  keys.addCommand(
    common(new Command('create'))
      .description('create an HMAC key; prints its KeyMetadata as JSON')
      .addOption(new Option('--key-spec <spec>', 'key spec').choices(SPECS).makeOptionMandatory())
      .option('--description <text>', 'description')
      .option('--alias <alias/NAME>', 'also create this alias for the key')
      .addOption(
        new Option('--origin <origin>', 'AWS_KMS (generated material) or EXTERNAL (import it with `keys import`)')
          .choices(['AWS_KMS', 'EXTERNAL'])
          .default('AWS_KMS'),
      )
      .option('--multi-region', 'multi-Region key (mrk- id)')
      .action(
        act(async (c, f) => {
          const { KeyMetadata } = await c.createKey({
            KeySpec: f.keySpec as string,
            KeyUsage: 'GENERATE_VERIFY_MAC',
            Description: f.description as string | undefined,
            Origin: f.origin as string,
            MultiRegion: f.multiRegion === true ? true : undefined,
          } as Parameters<KmsHmacClient['createKey']>[0]);
          if (f.alias) await c.createAlias({ AliasName: f.alias as string, TargetKeyId: KeyMetadata.KeyId });
          printJson({ KeyMetadata });
        }),
      ),
  );

  keys.addCommand(
    common(new Command('list'))
      .description('list keys with their aliases, spec and state')
      .option('--json', 'JSON: { Keys: [{ KeyId, KeyArn, KeySpec, KeyState, Aliases }] }')
      .action(
        act(async (c, f) => {
          const rows: {
            KeyId: string;
            KeyArn: string;
            KeySpec: string;
            KeyState: string;
            Aliases: string[];
            Description: string;
          }[] = [];
          const aliases = (await c.listAliases({})) as { Aliases: { AliasName: string; TargetKeyId?: string }[] };
          let marker: string | undefined;
          do {
            const page = await c.listKeys(marker ? { Marker: marker } : {});
            for (const k of page.Keys) {
              const { KeyMetadata: md } = await c.describeKey({ KeyId: k.KeyId });
              rows.push({
                KeyId: k.KeyId,
                KeyArn: k.KeyArn,
                KeySpec: md.KeySpec,
                KeyState: md.KeyState,
                Aliases: aliases.Aliases.filter((a) => a.TargetKeyId === k.KeyId).map((a) => a.AliasName),
                Description: md.Description,
              });
            }
            marker = page.Truncated ? page.NextMarker : undefined;
          } while (marker);
          if (f.json) return printJson({ Keys: rows });
          if (!rows.length) {
            process.stdout.write('no keys (create one: kms-hmac keys create --key-spec HMAC_256 --alias alias/logs)\n');
            return;
          }
          for (const r of rows) {
            process.stdout.write(
              `${r.KeyId}  ${r.KeySpec}  ${r.KeyState.padEnd(15)}  ${r.Aliases.join(',') || '-'}  ${r.Description}\n`,
            );
          }
        }),
      ),
  );

  keys.addCommand(
    keyIdOpt(common(new Command('describe')))
      .description('print the KeyMetadata of a key as JSON')
      .action(act(async (c, f) => printJson(await c.describeKey({ KeyId: f.keyId as string })))),
  );

  keys.addCommand(
    keyIdOpt(common(new Command('alias')))
      .description('point an alias at a key (creates it, or --update an existing one)')
      .requiredOption('--alias <alias/NAME>', 'alias name, e.g. alias/logs')
      .option('--update', 'retarget an existing alias')
      .action(
        act(async (c, f) => {
          // CreateAlias/UpdateAlias take a key ID or ARN only; --key-id may name another alias.
          const input = { AliasName: f.alias as string, TargetKeyId: await resolveKeyId(c, f.keyId as string) };
          if (f.update) await c.updateAlias(input);
          else await c.createAlias(input);
          printJson(input);
        }),
      ),
  );

  for (const [name, desc, op] of [
    ['enable', 'enable a key', 'enableKey'],
    ['disable', 'disable a key (GenerateMac/VerifyMac then fail with DisabledException)', 'disableKey'],
  ] as const) {
    keys.addCommand(
      keyIdOpt(common(new Command(name)))
        .description(desc)
        .action(
          act(async (c, f) => {
            await c[op]({ KeyId: await resolveKeyId(c, f.keyId as string) });
            const { KeyMetadata } = await c.describeKey({ KeyId: f.keyId as string });
            printJson({ KeyId: KeyMetadata.Arn, KeyState: KeyMetadata.KeyState });
          }),
        ),
    );
  }

  keys.addCommand(
    keyIdOpt(common(new Command('schedule-deletion')))
      .description('schedule a key for deletion (7–30 days)')
      .option('--pending-window-in-days <n>', 'waiting period, 7 to 30', '30')
      .action(
        act(async (c, f) =>
          printJson(
            await c.scheduleKeyDeletion({
              KeyId: await resolveKeyId(c, f.keyId as string),
              PendingWindowInDays: Number(f.pendingWindowInDays),
            }),
          ),
        ),
      ),
  );

  keys.addCommand(
    keyIdOpt(common(new Command('cancel-deletion')))
      .description('cancel a scheduled deletion (the key returns Disabled, as in KMS)')
      .action(
        act(async (c, f) => printJson(await c.cancelKeyDeletion({ KeyId: await resolveKeyId(c, f.keyId as string) }))),
      ),
  );

  keys.addCommand(
    keyIdOpt(common(new Command('import')))
      .description(
        'import key material into an EXTERNAL key (wrapped with RSAES_OAEP_SHA_256 / RSA_2048 as KMS requires)',
      )
      .option('--material-file <file>', 'the raw key material bytes, from a file or `-` (stdin)')
      .addOption(new Option('--material <file>', 'the same as --material-file').hideHelp())
      .option(
        '--material-hex <hex>',
        'key material as hex; deprecated, goes away in the next major version: argv is visible to other users',
      )
      .option(
        '--material-base64 <b64>',
        'key material as base64; deprecated, goes away in the next major version: argv is visible to other users',
      )
      .option('--valid-to <date>', 'material expires then (ISO 8601); default: never expires')
      .action(
        act(async (c, f) => {
          let material: Buffer;
          const file = (f.materialFile ?? f.material) as string | undefined;
          if (f.materialHex || f.materialBase64) {
            process.emitWarning(
              `--material-${f.materialHex ? 'hex' : 'base64'} puts key material in argv, where other users of this machine can read it (ps, /proc): ` +
                'use --material-file FILE, or --material-file - and stdin. The flag goes away in the next major version.',
              { type: 'DeprecationWarning', code: 'KMS_HMAC_MATERIAL_IN_ARGV' },
            );
          }
          if (f.materialHex) material = Buffer.from(f.materialHex as string, 'hex');
          else if (f.materialBase64) material = Buffer.from(f.materialBase64 as string, 'base64');
          else if (file) material = await readInput(file);
          else throw new CliError('keys import: give --material-file FILE (or - for stdin)', EXIT_USAGE);
          const keyId = await resolveKeyId(c, f.keyId as string);
          const params = (await c.getParametersForImport({
            KeyId: keyId,
            WrappingAlgorithm: 'RSAES_OAEP_SHA_256',
            WrappingKeySpec: 'RSA_2048',
          })) as { PublicKey: Uint8Array; ImportToken: Uint8Array };
          const wrapped = publicEncrypt(
            {
              key: createPublicKey({ key: Buffer.from(params.PublicKey), format: 'der', type: 'spki' }),
              padding: constants.RSA_PKCS1_OAEP_PADDING,
              oaepHash: 'sha256',
            },
            material,
          );
          material.fill(0);
          const validTo = f.validTo ? new Date(f.validTo as string) : undefined;
          if (validTo && Number.isNaN(validTo.getTime()))
            throw new CliError(`--valid-to: not a date: ${String(f.validTo)}`, EXIT_USAGE);
          await c.importKeyMaterial({
            KeyId: keyId,
            ImportToken: params.ImportToken,
            EncryptedKeyMaterial: wrapped,
            ExpirationModel: validTo ? 'KEY_MATERIAL_EXPIRES' : 'KEY_MATERIAL_DOES_NOT_EXPIRE',
            ValidTo: validTo,
          } as Parameters<KmsHmacClient['importKeyMaterial']>[0]);
          printJson(await c.describeKey({ KeyId: f.keyId as string }));
        }),
      ),
  );
  keys.addCommand(
    common(new Command('encrypt'))
      .description(
        'encrypt an unencrypted key store with the passphrase (--passphrase-file or $KMS_HMAC_PASSPHRASE): every record is rewritten sealed, the whole store authenticated',
      )
      .action(async (flags: F) => {
        if (!resolvePassphrase(undefined)) {
          throw new CliError(
            `keys encrypt: give the passphrase with --passphrase-file FILE, $${PASSPHRASE_FILE_ENV} or $${PASSPHRASE_ENV}`,
            EXIT_USAGE,
          );
        }
        await withClient(
          flags,
          async (c) => {
            const store = c.keyStore;
            await store.transact(() => undefined); // an unencrypted store opened with encryptExisting is rewritten on its next write
            printJson({
              KeyStore: describeKeyStore(keystorePath(flags)),
              Encrypted: (store as { encrypted?: boolean }).encrypted === true,
              Keys: store.listKeys().length,
            });
          },
          { encryptExisting: true },
        );
      }),
  );
  keys.addCommand(
    common(new Command('rekey'))
      .description(
        "change an encrypted key store's passphrase (the current one from --passphrase-file or the environment); " +
          'it is re-sealed with the current scrypt cost in one atomic commit',
      )
      .requiredOption('--new-passphrase-file <path>', 'the new passphrase (a file only you can read)')
      .action(async (flags: F) => {
        const next = readPassphraseFile(flags.newPassphraseFile as string);
        try {
          await withClient(flags, async (c) => {
            const store = c.keyStore as Partial<DurableKeyStore>;
            if (typeof store.rekey !== 'function')
              throw new CliError('keys rekey: the key store has no passphrase to change', EXIT_USAGE);
            await store.rekey(next);
            printJson({
              KeyStore: describeKeyStore(keystorePath(flags)),
              Encrypted: true,
              Keys: c.keyStore.listKeys().length,
              Scrypt: store.scrypt,
            });
          });
        } finally {
          next.fill(0);
        }
      }),
  );
  return keys;
}
