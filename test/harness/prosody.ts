// Starts a private Prosody (Debian package) for one test file: own run folder under the system temp
// dir, one random loopback c2s port (STARTTLS with the test certificate), s2s disabled, config from
// test/backends/prosody/, users registered with prosodyctl. See ../shared/research/BACKENDS.md.
//
// Traps handled here:
// - as root, `prosody -F` never drops privileges and never listens: it runs as user prosody (setpriv);
// - prosodyctl needs an absolute --config path (it drops to user prosody itself when run as root);
// - Prosody finds certificates by host name in `certificates`: capulet.lit.crt/.key and
//   montague.lit.crt/.key (the test cert covers both and their subdomains), key readable by prosody;
// - storage "internal" (flat files): starts in ~0.15 s and takes parallel prosodyctl registrations;
//   "sql" (SQLite) starts as fast but parallel registrations fail with "database is locked", so
//   they run one after another there.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CERTS, ROOT, ensurePackage, fillTemplate, freePort, isRoot, run, systemUser, tail, waitForPort, type Backend } from './common.js';

const PROSODY = '/usr/bin/prosody';
const PROSODYCTL = '/usr/bin/prosodyctl';
const TEMPLATES = join(ROOT, 'test', 'backends', 'prosody');
const HOSTS = ['capulet.lit', 'montague.lit'];

export interface ProsodyOptions {
  /** users to create, as [user, domain, password] */
  users?: Array<[string, string, string]>;
  /** Prosody's own log level (its log file is `logFile`) */
  loglevel?: 'debug' | 'info' | 'warn' | 'error';
  /** flat files (default, fastest) or SQLite through lua-dbi-sqlite3 */
  storage?: 'internal' | 'sql';
  /**
   * LuaSec TLS protocol for STARTTLS (default Prosody's own 'tlsv1_2+'). 'tlsv1_2' forces TLS 1.2, on
   * which Prosody 0.12 offers SCRAM-SHA-1-PLUS (tls-unique) and so rejects a SCRAM gs2 flag 'y'.
   */
  tlsProtocol?: 'tlsv1_2+' | 'tlsv1_2';
}

export async function startProsody(opts: ProsodyOptions = {}): Promise<Backend> {
  const storage = opts.storage ?? 'internal';
  ensurePackage(PROSODY, storage === 'sql' ? ['prosody', 'lua-dbi-sqlite3'] : ['prosody']);
  const dir = mkdtempSync(join(tmpdir(), 'xep207-prosody-'));
  chmodSync(dir, 0o755);
  for (const d of ['data', 'logs', 'certs']) mkdirSync(join(dir, d));
  for (const h of HOSTS) {
    copyFileSync(join(CERTS, 'cert.pem'), join(dir, 'certs', `${h}.crt`));
    copyFileSync(join(CERTS, 'key.pem'), join(dir, 'certs', `${h}.key`));
  }
  const [port, httpPort] = [await freePort(), await freePort()];
  const config = join(dir, 'prosody.cfg.lua');
  fillTemplate(join(TEMPLATES, 'prosody.cfg.lua'), config, {
    DIR: dir,
    C2S_PORT: port,
    HTTP_PORT: httpPort,
    STORAGE: storage,
    LOGLEVEL: opts.loglevel ?? 'info',
    TLS_PROTOCOL: opts.tlsProtocol ?? 'tlsv1_2+',
  });
  const ids = systemUser('prosody');
  if (isRoot && !ids) throw new Error("user 'prosody' is missing: install the prosody package");
  if (ids) {
    for (const d of ['data', 'logs', 'certs']) chownSync(join(dir, d), ids.uid, ids.gid);
    for (const h of HOSTS) for (const ext of ['crt', 'key']) chownSync(join(dir, 'certs', `${h}.${ext}`), ids.uid, ids.gid);
  }
  for (const h of HOSTS) chmodSync(join(dir, 'certs', `${h}.key`), 0o640);
  chmodSync(config, 0o644);

  const consoleLog = join(dir, 'console.log');
  const out = openSync(consoleLog, 'a');
  // as root: become prosody first (Prosody itself refuses to run as root and never listens)
  const [cmd, args] = ids
    ? ['setpriv', ['--reuid=prosody', '--regid=prosody', '--init-groups', PROSODY, '--config', config, '-F']]
    : [PROSODY, ['--config', config, '-F']];
  const child: ChildProcess = spawn(cmd, args as string[], { detached: true, stdio: ['ignore', out, out], cwd: dir });
  closeSync(out);
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => (exited = true));
  const logFile = join(dir, 'logs', 'prosody.log');
  try {
    await waitForPort(port, 20_000, () => !exited);
  } catch (err) {
    killGroup(child);
    throw new Error(`prosody did not start: ${(err as Error).message}\n${tail(consoleLog)}\n${tail(logFile)}`);
  }

  const register = async (user: string, domain: string, password: string): Promise<void> => {
    await run(PROSODYCTL, ['--config', config, 'register', user, domain, password], { cwd: dir, timeoutMs: 30_000 });
  };
  const backend: Backend = {
    kind: 'prosody',
    host: '127.0.0.1',
    port,
    wsUrl: `ws://127.0.0.1:${httpPort}/xmpp-websocket`,
    dir,
    logFile,
    register,
    registerAll: async (users) => {
      if (storage === 'sql') for (const [u, d, p] of users) await register(u, d, p);
      else await Promise.all(users.map(([u, d, p]) => register(u, d, p)));
    },
    stop: async () => {
      if (!exited) {
        killGroup(child, 'SIGTERM');
        const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
        await exitedPromise;
        clearTimeout(timer);
      }
      if (!process.env.XEP207_KEEP_BACKEND) rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await backend.registerAll(opts.users ?? []);
  } catch (err) {
    await backend.stop();
    throw err;
  }
  return backend;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    /* already gone */
  }
}
