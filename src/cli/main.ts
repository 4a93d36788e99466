/**
 * The `kms-hmac` command. bin/kms-hmac.js imports this file and calls main().
 * Exit codes: 0 ok, 1 verification failed / tampering, 2 usage or input
 * error, 3 key or service error (see common.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { benchCommand, PACKAGE_ROOT } from './bench.js';
import { addKeyStoreOptions, EXIT_OK, EXIT_USAGE, exitCodeFor, formatError, printWarningsPlainly } from './common.js';
import { demoCommand } from './demo.js';
import { keysCommand } from './keys.js';
import { signCommand, verifyCommand } from './logs.js';
import { macCommand } from './mac.js';
import { serveCommand } from './serve.js';

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

export function buildProgram(): Command {
  const program = new Command('kms-hmac')
    .description(
      'The AWS KMS HMAC API computed locally: keys, GenerateMac/VerifyMac, signed logs, a KMS-compatible endpoint',
    )
    .version(version())
    .addCommand(demoCommand())
    .addCommand(keysCommand())
    .addCommand(macCommand())
    .addCommand(signCommand())
    .addCommand(verifyCommand())
    .addCommand(serveCommand())
    .addCommand(benchCommand())
    .addHelpText(
      'after',
      `
Exit codes: 0 ok; 1 verification failed (tampering, KMSInvalidMacException);
2 usage or input error; 3 key or service error (NotFoundException, DisabledException, …).

Start here:
  kms-hmac demo
  kms-hmac keys create --key-spec HMAC_256 --alias alias/logs
  kms-hmac sign app.log --key-id alias/logs      # writes app.log.mac
  kms-hmac verify app.log --key-id alias/logs    # exit 1 names every tampered record`,
    );
  addKeyStoreOptions(program);
  const configure = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.showHelpAfterError('(add --help for usage)');
    for (const sub of cmd.commands) configure(sub);
  };
  configure(program);
  return program;
}

/** Runs the CLI; resolves to the exit code (also set on process.exitCode). */
export async function main(argv: string[] = process.argv): Promise<number> {
  printWarningsPlainly();
  const program = buildProgram();
  if (argv.length <= 2) {
    program.outputHelp({ error: true });
    return exitWith(EXIT_USAGE);
  }
  try {
    await program.parseAsync(argv);
    return exitWith(typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the help, version or error message
      return exitWith(err.exitCode === 0 ? EXIT_OK : EXIT_USAGE);
    }
    process.stderr.write(`kms-hmac: ${formatError(err)}\n`);
    return exitWith(exitCodeFor(err));
  }
}

function exitWith(code: number): number {
  process.exitCode = code;
  return code;
}
