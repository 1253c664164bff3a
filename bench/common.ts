// Shared pieces of the benchmark: child processes with an IPC request/answer channel and a raised
// open-files limit, CPU accounting, percentiles, a tiny XMPP client login over a raw socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';

/** dist/bench/ at run time */
export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

/** the project folder: the nearest ancestor of dist/bench/ with a package.json */
export const ROOT = (() => {
  let d = BENCH_DIR;
  while (!existsSync(join(d, 'package.json')) && dirname(d) !== d) d = dirname(d);
  return d;
})();

/** where results (and CPU profiles, heap snapshots) go: bench/results/ (gitignored) */
export const RESULTS = join(ROOT, 'bench', 'results');

export const QUICK = process.env.BENCH_QUICK === '1';

/**
 * A clock of the CPU time the hypervisor took from this VM (`steal` in /proc/stat, all CPUs), so a
 * phase can say how much of its figures is the host's load, not the code's: `stolen()` is the
 * share of all CPU time since the meter was made (0 where /proc/stat is missing).
 */
export function stealMeter(): { stolen(): number } {
  const read = (): number[] | undefined => {
    try {
      return readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    } catch {
      return undefined;
    }
  };
  const start = read();
  return {
    stolen() {
      const now = read();
      if (!start || !now) return 0;
      const total = now.reduce((a, v, k) => a + v - start[k]!, 0);
      return total > 0 ? (now[7]! - start[7]!) / total : 0;
    },
  };
}

/**
 * Wait until the hypervisor takes less than `limit` of the CPU time over `windowMs`, or `maxMs`
 * have passed: steal on this VM comes in bursts (one followed the bulk registration of accounts),
 * and a box measured inside one is measured against the host. Returns the last window's share.
 */
export async function calm(limit: number, windowMs = 5000, maxMs = 120_000): Promise<number> {
  const until = Date.now() + maxMs;
  for (;;) {
    const m = stealMeter();
    await sleep(windowMs);
    const stolen = m.stolen();
    if (stolen < limit || Date.now() >= until) return stolen;
  }
}

export function envNumber(name: string, dflt: number, min: 0 | 'positive' = 'positive'): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || (min === 'positive' ? n <= 0 : n < 0)) throw new Error(`${name} must be a ${min === 'positive' ? 'positive' : 'non-negative'} number, got '${v}'`);
  return n;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** user + system CPU time in seconds from a process.cpuUsage() value */
export function cpuSeconds(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1e6;
}

export interface Stats {
  cpu: NodeJS.CpuUsage;
  mem: NodeJS.MemoryUsage;
  /** live proxy sessions, or relayed connection pairs */
  sessions: number;
  /** V8 heap spaces: committed size and used bytes */
  spaces: Record<string, { size: number; used: number }>;
  /** /proc/self/io: read-like and write-like system calls so far (absent where /proc is not) */
  io?: { syscr: number; syscw: number };
}

/** read and write system calls between two Stats, per `n` (NaN where /proc/self/io is missing) */
export function syscallsPer(a: Stats, b: Stats, n: number): { reads: number; writes: number } {
  if (!a.io || !b.io) return { reads: NaN, writes: NaN };
  return { reads: (b.io.syscr - a.io.syscr) / n, writes: (b.io.syscw - a.io.syscw) / n };
}

function io(): Stats['io'] {
  try {
    const t = readFileSync('/proc/self/io', 'utf8');
    const get = (k: string) => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(t)?.[1] ?? NaN);
    return { syscr: get('syscr'), syscw: get('syscw') };
  } catch {
    return undefined;
  }
}

function spaces(): Stats['spaces'] {
  const out: Stats['spaces'] = {};
  for (const s of v8.getHeapSpaceStatistics()) out[s.space_name] = { size: s.space_size, used: s.space_used_size };
  return out;
}

function stats(sessions: number): Stats {
  return { cpu: process.cpuUsage(), mem: process.memoryUsage(), sessions, spaces: spaces(), io: io() };
}

/** The median of `xs` (the mean of the two middle ones for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

// ---- child processes -------------------------------------------------------------------------

interface Pending {
  resolve(v: unknown): void;
  reject(err: Error): void;
}

/** A child node process started through bash (to raise `ulimit -n`), talking over the IPC channel. */
export class Child {
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly readyWaiters: Array<(msg: Record<string, unknown>) => void> = [];
  private readyMsg: Record<string, unknown> | undefined;
  exited = false;
  private readonly exitPromise: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    proc.on('message', (raw) => {
      const msg = raw as Record<string, unknown>;
      if (msg.type === 'ready') {
        this.readyMsg = msg;
        for (const w of this.readyWaiters.splice(0)) w(msg);
        return;
      }
      const p = this.pending.get(msg.id as number);
      if (!p) return;
      this.pending.delete(msg.id as number);
      if (msg.error) p.reject(new Error(`${this.name}: ${String(msg.error)}`));
      else p.resolve(msg.result);
    });
    this.exitPromise = new Promise((resolve) => {
      proc.once('exit', (code) => {
        this.exited = true;
        for (const p of this.pending.values()) p.reject(new Error(`${this.name} exited (code ${code})`));
        this.pending.clear();
        resolve(code);
      });
    });
  }

  /** The child's first {type: 'ready'} message. */
  ready(timeoutMs = 30_000): Promise<Record<string, unknown>> {
    if (this.readyMsg) return Promise.resolve(this.readyMsg);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} not ready after ${timeoutMs} ms`)), timeoutMs);
      void this.exitPromise.then((code) => reject(new Error(`${this.name} exited (code ${code}) before it was ready`)));
      this.readyWaiters.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: '${cmd}' not answered within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.send({ id, cmd, ...args });
    });
  }

  stats(): Promise<Stats> {
    return this.call<Stats>('stats');
  }

  /** Ask it to exit; kill it if it does not within a few seconds. */
  async stop(): Promise<void> {
    if (this.exited) return;
    try {
      this.proc.send({ id: 0, cmd: 'exit' });
    } catch {
      /* channel already closed */
    }
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exitPromise;
    clearTimeout(timer);
  }
}

export interface ChildOptions {
  /** extra environment variables */
  env?: Record<string, string>;
  /** extra node flags (e.g. --expose-gc) */
  nodeArgs?: string[];
  /** show the child's stdout (default: discarded; the proxy logs JSON lines there) */
  stdout?: boolean;
}

/** Start `node dist/bench/<script>.js args...` with a high open-files limit and an IPC channel. */
export function startChild(name: string, script: string, args: string[], opts: ChildOptions = {}): Child {
  const nodeArgs = [...(opts.nodeArgs ?? []), ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [])];
  if (process.env.BENCH_CPU_PROF === '1') nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${join(RESULTS, 'profiles')}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`);
  // raise the soft limit as far as allowed (no CAP_SYS_RESOURCE: up to the hard limit)
  const proc = spawn('bash', ['-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', process.execPath, ...nodeArgs, join(BENCH_DIR, script), ...args], {
    stdio: ['ignore', opts.stdout || process.env.BENCH_CHILD_STDOUT === '1' ? 'inherit' : 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, ...(opts.env ?? {}) },
  });
  return new Child(name, proc);
}

/**
 * The child side of the channel: answer each {id, cmd} with handlers[cmd]; 'stats' and 'exit' are
 * built in ('gc' too, when node runs with --expose-gc).
 */
export function serveParent(handlers: Record<string, (msg: Record<string, unknown>) => unknown>, sessions: () => number = () => 0): void {
  const builtins: Record<string, (msg: Record<string, unknown>) => unknown> = {
    stats: () => stats(sessions()),
    // short-lived garbage, enough to have used every page of the young generation (idle section)
    churn: () => {
      let keep: unknown[] = [];
      for (let i = 0; i < 4_000_000; i++) {
        keep.push({ i, s: 'x' + i });
        if (keep.length > 1000) keep = [];
      }
      return keep.length;
    },
    gc: async () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (!gc) throw new Error('run with --expose-gc');
      for (let i = 0; i < 3; i++) {
        gc();
        await sleep(100);
      }
      await sleep(500); // V8 hands freed pages back to the OS from a background thread
      return stats(sessions());
    },
  };
  process.on('message', (raw) => {
    const msg = raw as Record<string, unknown>;
    if (msg.cmd === 'exit') {
      process.exit(0);
    }
    const h = handlers[msg.cmd as string] ?? builtins[msg.cmd as string];
    if (!h) {
      process.send!({ id: msg.id, error: `unknown command ${String(msg.cmd)}` });
      return;
    }
    Promise.resolve()
      .then(() => h(msg))
      .then(
        (result) => process.send!({ id: msg.id, result }),
        (err: unknown) => process.send!({ id: msg.id, error: err instanceof Error ? err.stack ?? err.message : String(err) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
}

/** This process's hard limit of open files (children get it as their soft limit). */
export function hardFdLimit(): number {
  try {
    const m = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : Infinity;
  } catch {
    return Infinity;
  }
}

// ---- a raw XMPP client login -------------------------------------------------------------------

export const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
export const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';

export function clientHeader(domain: string): string {
  return `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>`;
}

export function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
    s.setNoDelay(true);
  });
}

/**
 * Log in on a connected socket: stream header, SASL PLAIN (plaintext: no STARTTLS), restart, bind.
 * Resolves with the bound full JID; the socket then has no listeners left (the caller adds its own)
 * and any bytes received after the bind result are returned in `rest`.
 */
export async function login(socket: net.Socket, domain: string, user: string, password: string, resource: string, timeoutMs = 30_000): Promise<{ jid: string; rest: string }> {
  let data = '';
  let wake: (() => void) | undefined;
  let failed: Error | undefined;
  const onData = (d: Buffer) => {
    data += d.toString('latin1');
    wake?.();
  };
  const onEnd = (err?: Error) => {
    failed = err ?? new Error('connection closed during login');
    wake?.();
  };
  const onClose = () => onEnd();
  socket.on('data', onData);
  socket.on('error', onEnd);
  socket.on('close', onClose);
  const deadline = Date.now() + timeoutMs;
  const expect = async (re: RegExp): Promise<RegExpExecArray> => {
    for (;;) {
      const m = re.exec(data);
      if (m) {
        data = data.slice(m.index + m[0].length);
        return m;
      }
      if (failed) throw new Error(`${failed.message}; received: ${data.slice(-300)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`login: timed out waiting for ${re}; received: ${data.slice(-300)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        };
      });
    }
  };
  try {
    socket.write(clientHeader(domain));
    await expect(/<\/stream:features>/);
    const auth = Buffer.from(`\0${user}\0${password}`).toString('base64');
    socket.write(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${auth}</auth>`);
    const r = await expect(/<(success|failure)[^>]*(\/>|>[\s\S]*?<\/\1>)/);
    if (r[1] !== 'success') throw new Error(`SASL failed for ${user}: ${r[0]}`);
    socket.write(clientHeader(domain));
    await expect(/<\/stream:features>/);
    socket.write(`<iq type='set' id='bind1'><bind xmlns='${NS_BIND}'><resource>${resource}</resource></bind></iq>`);
    const j = await expect(/<jid>([^<]+)<\/jid>[\s\S]*?<\/iq>/);
    return { jid: j[1]!, rest: data };
  } finally {
    socket.off('data', onData);
    socket.off('error', onEnd);
    socket.off('close', onClose);
  }
}

/** Run `fn` over `items` with at most `limit` running at once. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** One measured round of a middlebox (proxy or raw relay) in its own process. */
export interface MiddleboxRun {
  cpuSeconds: number;
  /** of which in the kernel (system time) */
  systemSeconds: number;
  wallSeconds: number;
  stanzasPerCpuSecond: number;
  stanzasPerSecond: number;
  /** read / write system calls of the middlebox per stanza relayed (from /proc/<pid>/io) */
  readsPerStanza: number;
  writesPerStanza: number;
}
