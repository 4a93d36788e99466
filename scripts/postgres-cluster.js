// A throwaway PostgreSQL cluster for the tests and benchmarks: initdb in a
// temporary directory, the server listening on a unix socket in that
// directory only (no TCP port, so parallel runs never collide), stopped and
// removed afterwards. PostgreSQL refuses to run as root: as root, every
// server command runs as the `postgres` user (runuser), from `/`, since the
// postgres user may not be able to enter the caller's working directory (a
// checkout in a 0700 directory: psql would warn, initdb and pg_ctl refuse).
//
//   const pg = await startPostgres();          // undefined when PostgreSQL is not installed
//   const url = await pg.createDatabase('t1'); // postgres://postgres@/t1?host=<socket dir>
//   await pg.stop(); await pg.start();          // a database restart
//   await pg.destroy();
//
// `KMS_HMAC_REQUIRE_POSTGRES=1` turns "not installed" into an error (CI).
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const REQUIRE_ENV = 'KMS_HMAC_REQUIRE_POSTGRES';

/**
 * The directory with initdb, pg_ctl, postgres and psql: $KMS_HMAC_POSTGRES_BIN
 * if set ('' or a directory without them: none), else Debian's
 * /usr/lib/postgresql/<newest>/bin, else on PATH.
 */
export function postgresBinDir() {
  const tools = ['initdb', 'pg_ctl', 'postgres', 'psql'];
  const forced = process.env.KMS_HMAC_POSTGRES_BIN;
  if (forced !== undefined) return forced && tools.every((t) => existsSync(join(forced, t))) ? forced : undefined;
  const base = '/usr/lib/postgresql';
  const debian = existsSync(base)
    ? readdirSync(base)
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => join(base, v, 'bin'))
    : [];
  const path = (process.env.PATH ?? '').split(':').filter(Boolean);
  return [...debian, ...path].find((dir) => tools.every((t) => existsSync(join(dir, t))));
}

/** Why PostgreSQL cannot be used here, or undefined when it can. */
export function postgresUnavailableReason() {
  if (process.platform === 'win32') return 'the test cluster runs on Unix only';
  if (!postgresBinDir())
    return 'PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql; or set KMS_HMAC_POSTGRES_BIN)';
  if (process.getuid?.() === 0) {
    try {
      execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
    } catch {
      return 'running as root and there is no `postgres` user to run the server as';
    }
  }
  return undefined;
}

/** Runs a PostgreSQL program; resolves with its standard output (warnings on stderr are not an answer). */
function run(cmd, args) {
  const asRoot = process.getuid?.() === 0;
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const p = spawn(file, argv, { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out}${err}`)),
    );
  });
}

export class PostgresCluster {
  constructor(dir, bin, options) {
    this.dir = dir;
    this.bin = bin;
    this.data = join(dir, 'data');
    this.socketDir = dir;
    this.port = 5432;
    this.options = options;
    this.running = false;
  }

  /** A connection URL for `database` (over the unix socket). */
  url(database = 'postgres') {
    return `postgres://postgres@/${database}?host=${encodeURIComponent(this.socketDir)}`;
  }

  /** The environment that points psql, pg and `kms-hmac --keystore postgres://` at this cluster. */
  env(database = 'postgres') {
    return { PGHOST: this.socketDir, PGPORT: String(this.port), PGUSER: 'postgres', PGDATABASE: database };
  }

  async start() {
    const settings = [`-k ${this.socketDir}`, `-p ${this.port}`, "-c listen_addresses=''", '-c max_connections=200'];
    if (!this.options.durable) settings.push('-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off');
    await run(join(this.bin, 'pg_ctl'), [
      '-D',
      this.data,
      '-o',
      settings.join(' '),
      '-l',
      join(this.dir, 'server.log'),
      '-w',
      '-t',
      '60',
      'start',
    ]);
    this.running = true;
  }

  /** Stops the server; `mode` as pg_ctl's (fast: disconnect clients and shut down cleanly; immediate: like a crash). */
  async stop(mode = 'fast') {
    if (!this.running) return;
    await run(join(this.bin, 'pg_ctl'), ['-D', this.data, '-m', mode, '-w', '-t', '60', 'stop']);
    this.running = false;
  }

  async psql(sql, database = 'postgres') {
    return (
      await run(join(this.bin, 'psql'), [
        '-h',
        this.socketDir,
        '-p',
        String(this.port),
        '-U',
        'postgres',
        '-d',
        database,
        '-v',
        'ON_ERROR_STOP=1',
        '-Atc',
        sql,
      ])
    ).trim();
  }

  /** Creates a database and returns its URL. */
  async createDatabase(name) {
    if (!/^[a-z_][a-z0-9_]*$/.test(name))
      throw new RangeError(`database name ${name}: lowercase letters, digits and _ only`);
    await this.psql(`CREATE DATABASE ${name}`);
    return this.url(name);
  }

  async destroy() {
    try {
      await this.stop('immediate');
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/**
 * Starts a new cluster. Resolves undefined when PostgreSQL is not available
 * (and KMS_HMAC_REQUIRE_POSTGRES is not 1). `durable: true` keeps fsync on
 * (benchmarks); tests run without it, which loses nothing unless the machine
 * itself crashes.
 */
export async function startPostgres({ durable = false } = {}) {
  const reason = postgresUnavailableReason();
  if (reason) {
    if (process.env[REQUIRE_ENV] === '1') throw new Error(`${REQUIRE_ENV}=1 but ${reason}`);
    return undefined;
  }
  const bin = /** @type {string} */ (postgresBinDir()); // (there is one: no reason above)
  const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-pg-'));
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(dir, uid, gid);
  }
  const cluster = new PostgresCluster(dir, bin, { durable });
  try {
    await run(join(bin, 'initdb'), [
      '-D',
      cluster.data,
      '-A',
      'trust',
      '-U',
      'postgres',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    await cluster.start();
    return cluster;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
