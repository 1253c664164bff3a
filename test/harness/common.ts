// Shared pieces of the test harness: free ports, waiting for a port, running commands, installing
// Debian packages a bare machine lacks, filling config templates.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** the project folder: the nearest ancestor with package.json (works from test/ and from dist/test/) */
export const ROOT = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json')) && dirname(d) !== d) d = dirname(d);
  return d.endsWith('/dist') ? dirname(d) : d;
})();
export const CERTS = join(ROOT, 'test', 'certs');

export interface Backend {
  kind: 'ejabberd' | 'prosody';
  host: string;
  /** c2s port offering STARTTLS */
  port: number;
  /** c2s port without STARTTLS, where the backend has one */
  plainPort?: number;
  /** c2s port with direct TLS (XEP-0368), where the backend has one */
  tlsPort?: number;
  /** the server process's pid, where known (the benchmark pins it to a CPU and reads its CPU time) */
  pid?(): number | undefined;
  /** its XMPP over WebSocket endpoint (RFC 7395), ws:// on loopback */
  wsUrl: string;
  /** run folder (config, logs, data) */
  dir: string;
  register(user: string, domain: string, password: string): Promise<void>;
  /** many users at once, as fast as the backend allows (each [user, domain, password]) */
  registerAll(users: ReadonlyArray<readonly [string, string, string]>): Promise<void>;
  /** backend log file, for failure diagnostics */
  logFile: string;
  stop(): Promise<void>;
}

/**
 * Ports handed out by this process. The kernel may give the same ephemeral port to two binds in a
 * row once the first is closed, so a backend asking for five ports could get one twice (ejabberd
 * then refuses to start: "Overlapping listeners"). Never hand a port out twice in one process.
 */
const handedOut = new Set<number>();

/** A port that was free a moment ago (bind to 0, read, close) and not handed out before by this process. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as net.AddressInfo;
        srv.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

export async function waitForPort(port: number, timeoutMs: number, alive?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (alive && !alive()) throw new Error(`process exited before port ${port} accepted`);
    if (Date.now() > deadline) throw new Error(`port ${port} not accepting after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

export const isRoot = process.getuid?.() === 0;

/**
 * Make sure a Debian package's binary is there; install it with apt-get when it is not and we are
 * root (CI on a bare machine). Not root and missing: the error says what to run.
 */
export function ensurePackage(binary: string, packages: string[]): void {
  if (existsSync(binary)) return;
  if (!isRoot) throw new Error(`${binary} is missing: run 'sudo .ci/setup' (or apt-get install ${packages.join(' ')})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '-q', ...packages], { env, stdio: 'inherit' });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { env, stdio: 'inherit' });
    r = spawnSync('apt-get', ['install', '-y', '-q', ...packages], { env, stdio: 'inherit' });
  }
  if (r.status !== 0 || !existsSync(binary)) throw new Error(`could not install ${packages.join(' ')}`);
}

/** Copy a template, replacing each @KEY@. */
export function fillTemplate(src: string, dst: string, values: Record<string, string | number>): void {
  let text = readFileSync(src, 'utf8');
  for (const [k, v] of Object.entries(values)) text = text.split(`@${k}@`).join(String(v));
  const left = /@[A-Z_]+@/.exec(text);
  if (left) throw new Error(`${src}: no value for ${left[0]}`);
  writeFileSync(dst, text);
}

export function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** uid/gid of a system user when we are root (files it must own), else undefined. */
export function systemUser(name: string): { uid: number; gid: number } | undefined {
  if (!isRoot) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}
