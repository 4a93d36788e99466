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
//   const tls = await startPostgres({ tls: true }); // also on 127.0.0.1:<free port>, TLS only there,
//   tls.tcpUrl('t1', 'sslmode=verify-full&sslrootcert=' + tls.caFile)  // a certificate for localhost from a CA of its own
//
// `KMS_HMAC_REQUIRE_POSTGRES=1` turns "not installed" into an error (CI).
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCertificates as makeCertificateFiles } from './certificates.js';

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
    /** With `tls`: the TCP port on 127.0.0.1, and the CA that signed the server's certificate (CN and SAN localhost). */
    this.tcpPort = undefined;
    this.caFile = undefined;
  }

  /** A URL for `database` over TCP to 127.0.0.1 by the name localhost (the certificate's), with `query` appended. */
  tcpUrl(database = 'postgres', query = '') {
    return `postgres://postgres@localhost:${this.tcpPort}/${database}${query ? `?${query}` : ''}`;
  }

  /** A connection URL for `database` (over the unix socket). */
  url(database = 'postgres') {
    const port = this.port === 5432 ? '' : `&port=${this.port}`;
    return `postgres://postgres@/${database}?host=${encodeURIComponent(this.socketDir)}${port}`;
  }

  /** The environment that points psql, pg and `kms-hmac --keystore postgres://` at this cluster. */
  env(database = 'postgres') {
    return { PGHOST: this.socketDir, PGPORT: String(this.port), PGUSER: 'postgres', PGDATABASE: database };
  }

  async start() {
    const listen = this.tcpPort === undefined ? "''" : '127.0.0.1';
    const settings = [
      `-k ${this.socketDir}`,
      `-p ${this.port}`,
      `-c listen_addresses=${listen}`,
      '-c max_connections=200',
    ];
    if (this.tcpPort !== undefined) settings.push('-c ssl=on');
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
/** A free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise(
    /** @param {(port: number) => void} resolve */ (resolve, reject) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const { port } = /** @type {import('node:net').AddressInfo} */ (s.address());
        s.close(() => resolve(port));
      });
      s.on('error', reject);
    },
  );
}

/** A CA and a server certificate for localhost / 127.0.0.1 signed by it (openssl), in the data directory. */
function makeCertificates(cluster, owner) {
  const d = cluster.data;
  makeCertificateFiles(cluster.dir, { certFile: join(d, 'server.crt'), keyFile: join(d, 'server.key') });
  chmodSync(join(d, 'server.key'), 0o600);
  if (owner) for (const f of ['server.key', 'server.crt']) chownSync(join(d, f), owner.uid, owner.gid);
  // TLS is required on TCP (the first matching line wins); the unix socket stays as it was (trust).
  const hba = join(d, 'pg_hba.conf');
  writeFileSync(
    hba,
    `hostnossl all all 0.0.0.0/0 reject\nhostssl all all 127.0.0.1/32 trust\n${readFileSync(hba, 'utf8')}`,
  );
  cluster.caFile = join(cluster.dir, 'ca.pem');
}

export async function startPostgres({ durable = false, tls = false } = {}) {
  const reason = postgresUnavailableReason();
  if (reason) {
    if (process.env[REQUIRE_ENV] === '1') throw new Error(`${REQUIRE_ENV}=1 but ${reason}`);
    return undefined;
  }
  const bin = /** @type {string} */ (postgresBinDir()); // (there is one: no reason above)
  const dir = mkdtempSync(join(tmpdir(), 'kms-hmac-pg-'));
  let owner;
  if (process.getuid?.() === 0) {
    owner = {
      uid: Number(execFileSync('id', ['-u', 'postgres']).toString()),
      gid: Number(execFileSync('id', ['-g', 'postgres']).toString()),
    };
    chownSync(dir, owner.uid, owner.gid);
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
    if (tls) {
      makeCertificates(cluster, owner);
      cluster.tcpPort = await freePort();
      cluster.port = cluster.tcpPort; // PostgreSQL has one port: the TCP listener's, and the socket's name
    }
    await cluster.start();
    return cluster;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
