// (e) What users see. The proxy as its CLI starts it (its defaults: STARTTLS to the backend; and
// `--upstream-tls off`, the sidecar case) in front of a real pubsub-only ejabberd, with many distinct
// accounts, against a raw Node relay in the same run (`raw`: plaintext upstream; `rawtls`: the same
// relay terminating direct TLS to the backend, so that the TLS leg's cost is on both sides), and
// `proxy-off-x2`: two such `--upstream-tls off` processes in front of the same backend, client i
// through instance i % 2, their CPU time and RSS summed (issue 10, point 6: what a second instance
// costs per unit of work). When the machine has two CPUs, the middlebox (both instances of x2) is
// pinned to CPU 0 and ejabberd plus this load generator to CPU 1 (taskset), so that the
// middlebox's CPU time is its own.
//
// Per middlebox, one after another:
//   logins   first login of accounts that never logged in through it (the proxy makes their nodes),
//            then a second login of the same accounts; BENCH_USERS_CONCURRENCY (16) in progress;
//            logins/s, connect -> bound and connect -> initial presence answered (the session's own
//            presence back, RFC 6121 §4.2.2), CPU per login of the middlebox and of ejabberd
//   idle     RSS per idle session (bound, initial presence sent) at each of BENCH_USERS_IDLE
//            (1000,5000) distinct accounts, from the RSS of a freshly started middlebox (first);
//            not for x2 (its own first logins would add minutes to a run)
//   relay    4 connections x 64 messages in flight to their own full JIDs: relayed stanzas per
//            middlebox CPU-second
//   latency  one message to oneself at a time, through the middlebox (x2: its first instance) and
//            directly, in alternating blocks: the middlebox's added round-trip time
// CPU time, RSS and system calls come from /proc (the proxy is a plain CLI process). Between
// phases the bench waits for ejabberd and the middlebox to go quiet (closes of thousands of proxied
// sessions are publishes the backend works through for a while).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import type net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { CERTS, freePort, waitForPort } from '../test/harness/common.js';
import { startEjabberd } from '../test/harness/ejabberd.js';
import { QUICK, ROOT, calm, connect, cpuSeconds, envNumber, login, median, percentile, pool, sleep, startChild, stealMeter, type Stats } from './common.js';
import { PingPong, loadRound, summarize, type Latency } from './ejabberd.js';

export const DOMAIN = 'capulet.lit';
export const PASSWORD = 'secret';
/** above this share of CPU time taken by the hypervisor, a box's figures say more about the host than the code */
export const STEAL_WARN = 0.02;
/** USER_HZ: /proc's unit of CPU time */
const TICK = 100;

export type BoxName = 'raw' | 'proxy-off' | 'proxy-off-x2' | 'rawtls' | 'proxy-tls';

/** proxy processes behind one box name */
const instancesOf = (name: BoxName) => (name === 'proxy-off-x2' ? 2 : 1);

export interface Quantiles {
  p50us: number;
  p99us: number;
}

export interface LoginPhase {
  logins: number;
  perSecond: number;
  bound: Quantiles;
  presence: Quantiles;
  /** logins whose own presence never came back (within 10 s) */
  noPresence: number;
  cpuPerLoginUs: number;
  backendCpuPerLoginUs: number;
}

export interface BoxResult {
  /** the freshly started process's first logins (the warm-up's first logins, before any other): what a restarted instance costs */
  fresh?: LoginPhase;
  first: LoginPhase;
  second: LoginPhase;
  idle: Array<{ sessions: number; rssPerSessionKiB: number }>;
  relay: { stanzasPerCpuSecond: number; relayed: number };
  latency: { box: Latency; direct: Latency; addedP50us: number; addedP99us: number };
  /** share of the VM's CPU time the hypervisor took while this box was measured (/proc/stat steal) */
  steal: number;
}

/**
 * The raw relay and the plaintext proxy side by side, measured in turns (raw, proxy, proxy, raw, ...):
 * on a shared VM the relay phases of two boxes measured minutes apart differ by more than the
 * figures compared (docs/bench.md), so the targets of relayed stanzas and added latency use these.
 */
export interface PairedResult {
  /** stanzas per middlebox CPU-second of each round, in the order measured */
  rounds: Array<{ raw: number; proxy: number }>;
  /** median of the rounds' proxy/raw */
  relayRatio: number;
  /** p50 over direct of blocks of round trips taken in turns through raw, proxy and directly */
  latency: { rawAddedP50us: number; proxyAddedP50us: number; directP50us: number };
  /** share of the VM's CPU time taken by the hypervisor during the rounds */
  steal: number;
  /** first and second logins in turns (BENCH_USERS_PAIRED_LOGINS per box and round; absent at 0) */
  logins?: PairedLogins;
}

/** Logins through both boxes in turns: each round fresh accounts per box, first then second login. */
export interface PairedLogins {
  rounds: Array<{ first: { raw: LoginPhase; proxy: LoginPhase }; second: { raw: LoginPhase; proxy: LoginPhase } }>;
  /** medians over the rounds of proxy/raw */
  firstRate: number;
  secondRate: number;
  firstCpu: number;
  secondCpu: number;
}

export interface UsersResult {
  pinned: boolean;
  accounts: number;
  loadAverage: number[];
  boxes: Partial<Record<BoxName, BoxResult>>;
  paired?: PairedResult;
}

/**
 * A process's CPU time in microseconds, exact: the sum of its threads' run times in nanoseconds
 * (/proc/PID/task/TID/schedstat, first field), not /proc/PID/stat's utime + stime, which are whole
 * 10 ms ticks (a round of 250 logins through the raw relay is about 9 of them, so one tick more or
 * less moved its CPU per login by 11%). Threads that exited are not in it: the boxes' processes
 * (Node's, the beam's) keep theirs. undefined where the kernel has no schedstat.
 */
function runTimeUs(pid: number): number | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let ns = 0;
  for (const tid of tids) {
    let line: string;
    try {
      line = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8');
    } catch {
      continue; // the thread exited after the listing: skipped, not a reason to fall back to ticks
    }
    ns += Number(line.split(' ')[0]);
  }
  return Number.isFinite(ns) ? ns / 1000 : undefined;
}

/**
 * What /proc says of processes, summed (the instances of one middlebox): CPU time (its total exact,
 * runTimeUs; the system part in ticks), RSS, read/write system calls (the Stats shape).
 */
export function procStats(...pids: number[]): Stats {
  const cpu = { user: 0, system: 0 };
  let rss = 0;
  let io: Stats['io'] = { syscr: 0, syscw: 0 };
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // from field 3 (state) on
    const user = (Number(f[11]) * 1e6) / TICK;
    const system = (Number(f[12]) * 1e6) / TICK;
    const exact = runTimeUs(pid);
    cpu.user += exact === undefined ? user : exact - system;
    cpu.system += system;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    rss += Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) * 1024;
    try {
      const t = readFileSync(`/proc/${pid}/io`, 'utf8');
      const get = (k: string) => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(t)?.[1] ?? NaN);
      if (io) io = { syscr: io.syscr + get('syscr'), syscw: io.syscw + get('syscw') };
    } catch {
      io = undefined;
    }
  }
  const mem = { rss, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
  return { cpu, mem, sessions: 0, spaces: {}, ...(io ? { io } : {}) };
}

/** Before a box is measured: wait out a burst of the hypervisor's steal (up to 2 minutes), and say so. */
async function settle(name: string, log: (s: string) => void): Promise<void> {
  const t0 = Date.now();
  const stolen = await calm(STEAL_WARN);
  const waited = (Date.now() - t0) / 1000;
  if (waited > 6) log(`  ${name.padEnd(12)} waited ${waited.toFixed(0)} s for the hypervisor's steal to drop (last 5 s: ${(stolen * 100).toFixed(1)}%)`);
}

/** Pin every thread of `pid` to `cpu`; false where taskset is missing or refuses. */
export function pin(pid: number, cpu: number): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** One middlebox process. */
interface Instance {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** A middlebox: one process, or several in front of the same backend (the load split over them). */
interface Box {
  name: BoxName;
  /** one per instance: client i connects to ports[i % ports.length] (portOf) */
  ports: number[];
  pids: number[];
  /** summed over the instances */
  stats(): Promise<Stats>;
  stop(): Promise<void>;
}

function makeBox(name: BoxName, instances: Instance[]): Box {
  const pids = instances.map((i) => i.pid);
  return {
    name,
    ports: instances.map((i) => i.port),
    pids,
    stats: async () => procStats(...pids),
    stop: async () => {
      await Promise.all(instances.map((i) => i.stop()));
    },
  };
}

const portOf = (box: Box, client: number) => box.ports[client % box.ports.length]!;

async function rawBox(name: 'raw' | 'rawtls', host: string, port: number): Promise<Box> {
  const child = startChild(`users-${name}`, 'middlebox.js', [name, host, String(port), 'warn'], { env: { BENCH_UPSTREAM_CA: join(CERTS, 'ca.pem'), BENCH_UPSTREAM_NAME: DOMAIN } });
  const ready = (await child.ready()) as { port: number; pid: number };
  return makeBox(name, [{ port: ready.port, pid: ready.pid, stop: () => child.stop() }]);
}

/** The proxy as a user starts it: bin/xep207-proxy with its defaults plus `args`, in `instances` processes. */
async function cliBox(name: 'proxy-off' | 'proxy-off-x2' | 'proxy-tls', args: string[], instances: number): Promise<Box> {
  const nodeArgs = process.env.BENCH_PROXY_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const started: Instance[] = [];
  for (let n = 0; n < instances; n++) {
    const port = await freePort();
    // the bin as a user runs it (its first line gives Node its flags); BENCH_PROXY_NODE_ARGS: node with those instead
    const bin = join(ROOT, 'bin', 'xep207-proxy');
    // its default log level too (info: three lines per session), to /dev/null; BENCH_PROXY_LOG_LEVEL sets another
    const level = process.env.BENCH_PROXY_LOG_LEVEL ? ['--log-level', process.env.BENCH_PROXY_LOG_LEVEL] : [];
    const cmd = [...(nodeArgs.length > 0 ? [process.execPath, ...nodeArgs, bin] : [bin]), '--listen', `127.0.0.1:${port}`, ...args, ...level];
    // the open-files limit raised as for the other middleboxes (two sockets per session)
    const proc: ChildProcess = spawn('bash', ['-c', 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', ...cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    await waitForPort(port, 20_000);
    started.push({
      port,
      pid: proc.pid!,
      stop: async () => {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 8000);
        await exited;
        clearTimeout(timer);
      },
    });
  }
  return makeBox(name, started);
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

export interface Session {
  sock: net.Socket;
  boundUs: number;
  presenceUs: number | undefined;
}

/**
 * One login as a client does it: connect, SASL PLAIN, bind, initial presence, its own presence back
 * (or not within `presenceWaitMs`: `presenceUs` undefined).
 */
export async function loginOnce(port: number, user: string, resource: string, presenceWaitMs = 10_000): Promise<Session> {
  const t0 = process.hrtime.bigint();
  const sock = await connect(port);
  sock.on('error', () => undefined);
  const { jid, rest } = await login(sock, DOMAIN, user, PASSWORD, resource, 120_000);
  const boundUs = Number(process.hrtime.bigint() - t0) / 1e3;
  const own = new RegExp(`<presence[^>]*from=["']${escapeRe(jid)}["']`);
  let data = rest;
  const presenceUs = await new Promise<number | undefined>((resolve) => {
    const done = (v: number | undefined) => {
      clearTimeout(timer);
      sock.off('data', onData);
      resolve(v);
    };
    const onData = (d: Buffer) => {
      data = (data + d.toString('latin1')).slice(-8192);
      if (own.test(data)) done(Number(process.hrtime.bigint() - t0) / 1e3);
    };
    const timer = setTimeout(() => done(undefined), presenceWaitMs);
    sock.on('data', onData);
    sock.write('<presence/>');
  });
  sock.resume(); // an idle session still reads what the server sends it
  return { sock, boundUs, presenceUs };
}

function quantiles(xs: number[]): Quantiles {
  const s = [...xs].sort((a, b) => a - b);
  return { p50us: percentile(s, 50), p99us: percentile(s, 99) };
}

export async function closeAll(sessions: Session[]): Promise<void> {
  for (const s of sessions) {
    s.sock.end('</stream:stream>');
    setTimeout(() => s.sock.destroy(), 2000).unref();
  }
  await sleep(QUICK ? 1000 : 2500); // the middlebox and the backend finish their closes
}

/**
 * Wait until `pid` (the backend, the middlebox) uses under 5% of a CPU over half a second, at most
 * 120 s: thousands of proxied sessions closing leave the backend their unavailability publishes and
 * retractions to process, which the next phase must not be charged with.
 */
export async function quiet(pids: Array<number | undefined>): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (const pid of pids) {
    if (pid === undefined) continue;
    for (;;) {
      const a = cpuSeconds(procStats(pid).cpu);
      await sleep(500);
      if (cpuSeconds(procStats(pid).cpu) - a < 0.025 || Date.now() > deadline) break;
    }
  }
}

async function loginPhase(box: Box, beam: number | undefined, users: string[], concurrency: number, tag: string): Promise<{ phase: LoginPhase; sessions: Session[] }> {
  const b0 = beam ? procStats(beam) : undefined;
  const s0 = await box.stats();
  const t0 = process.hrtime.bigint();
  const sessions = await pool(users, concurrency, (u, i) => loginOnce(portOf(box, i), u, tag));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const s1 = await box.stats();
  const b1 = beam ? procStats(beam) : undefined;
  const presence = sessions.map((s) => s.presenceUs).filter((v): v is number => v !== undefined);
  const phase: LoginPhase = {
    logins: users.length,
    perSecond: users.length / wall,
    bound: quantiles(sessions.map((s) => s.boundUs)),
    presence: quantiles(presence),
    noPresence: sessions.length - presence.length,
    cpuPerLoginUs: ((cpuSeconds(s1.cpu) - cpuSeconds(s0.cpu)) * 1e6) / users.length,
    backendCpuPerLoginUs: b0 && b1 ? ((cpuSeconds(b1.cpu) - cpuSeconds(b0.cpu)) * 1e6) / users.length : NaN,
  };
  return { phase, sessions };
}

/**
 * A warm-up: first logins of `users`, then `rounds` rounds of their second logins, each closed and
 * waited out (`waitFor` quiet). Returns the first logins' phase: a fresh process's, when they are
 * the first the box serves.
 */
async function warmUp(box: Box, beam: number | undefined, users: string[], rounds: number, concurrency: number, waitFor: Array<number | undefined>): Promise<LoginPhase> {
  let fresh: LoginPhase | undefined;
  for (let n = 0; n <= rounds; n++) {
    const { phase, sessions } = await loginPhase(box, beam, users, concurrency, n === 0 ? 'warm' : `warm${n}`);
    fresh ??= phase;
    await closeAll(sessions);
    await quiet(waitFor);
  }
  return fresh!;
}

async function idlePhase(box: Box, users: string[], sizes: number[]): Promise<BoxResult['idle']> {
  await sleep(1000);
  const base = (await box.stats()).mem.rss;
  const sessions: Session[] = [];
  const out: BoxResult['idle'] = [];
  try {
    for (const size of sizes) {
      const more = users.slice(sessions.length, size);
      const offset = sessions.length;
      sessions.push(...(await pool(more, 32, (u, i) => loginOnce(portOf(box, offset + i), u, 'idle'))));
      await sleep(QUICK ? 1000 : 3000);
      const rss = (await box.stats()).mem.rss;
      out.push({ sessions: size, rssPerSessionKiB: (rss - base) / size / 1024 });
    }
  } finally {
    await closeAll(sessions);
  }
  return out;
}

async function latencyPhase(box: Box, directPort: number, user: string, total: number): Promise<BoxResult['latency']> {
  const make = async (port: number, tag: string) => {
    const sock = await connect(port);
    const { jid } = await login(sock, DOMAIN, user, PASSWORD, tag);
    return new PingPong(sock, jid);
  };
  // one round trip at a time is one instance's figure: x2 through its first
  const [viaBox, direct] = [await make(box.ports[0]!, `lat-${box.name}`), await make(directPort, `lat-direct-${box.name}`)];
  try {
    const a: number[] = [];
    const d: number[] = [];
    await viaBox.run(300, []);
    await direct.run(300, []);
    for (let done = 0; done < total; done += 100) {
      await viaBox.run(Math.min(100, total - done), a);
      await direct.run(Math.min(100, total - done), d);
    }
    const box_ = summarize(a);
    const dir = summarize(d);
    return { box: box_, direct: dir, addedP50us: box_.p50us - dir.p50us, addedP99us: box_.p99us - dir.p99us };
  } finally {
    viaBox.sock.destroy();
    direct.sock.destroy();
  }
}

/** What the logins in turns need: the backend's pid, accounts per box (warm-up, then per round). */
interface PairedLoginPlan {
  beam: number | undefined;
  concurrency: number;
  warm: (box: BoxName) => string[];
  /** rounds of second logins of the warm-up accounts after their first logins */
  warmRounds: number;
  round: (box: BoxName, n: number) => string[];
}

/**
 * Logins in turns (PairedLogins): both boxes freshly started, each warmed up with first logins of
 * its own, then per round (ABBA) fresh accounts through each box, first login then second login, the
 * backend and the boxes quiet between phases. The login targets are judged on these: the boxes'
 * own login phases are minutes apart, and a raw relay at half its usual speed made a "pass" once.
 */
async function pairedLogins(raw: Box, proxy: Box, rounds: number, plan: PairedLoginPlan, log: (s: string) => void): Promise<PairedLogins> {
  const phase = async (box: Box, users: string[], tag: string): Promise<LoginPhase> => {
    const { phase: p, sessions } = await loginPhase(box, plan.beam, users, plan.concurrency, tag);
    await closeAll(sessions);
    await quiet([plan.beam, ...raw.pids, ...proxy.pids]);
    return p;
  };
  for (const box of [raw, proxy]) {
    const warm = plan.warm(box.name);
    if (warm.length > 0) await warmUp(box, plan.beam, warm, plan.warmRounds, plan.concurrency, [plan.beam, ...raw.pids, ...proxy.pids]);
  }
  const out: PairedLogins['rounds'] = [];
  for (let n = 0; n < rounds; n++) {
    const order = n % 2 === 0 ? [raw, proxy] : [proxy, raw];
    const first: Partial<Record<'raw' | 'proxy', LoginPhase>> = {};
    const second: Partial<Record<'raw' | 'proxy', LoginPhase>> = {};
    for (const box of order) first[box === raw ? 'raw' : 'proxy'] = await phase(box, plan.round(box.name, n), 'pfirst');
    for (const box of order) second[box === raw ? 'raw' : 'proxy'] = await phase(box, plan.round(box.name, n), 'psecond');
    const r = { first: { raw: first.raw!, proxy: first.proxy! }, second: { raw: second.raw!, proxy: second.proxy! } };
    out.push(r);
    const f = (x: LoginPhase) => `${x.perSecond.toFixed(0)}/s ${(x.cpuPerLoginUs / 1e3).toFixed(2)} ms`;
    log(`  paired logins ${n + 1}: first raw ${f(r.first.raw)}, proxy-off ${f(r.first.proxy)}; second raw ${f(r.second.raw)}, proxy-off ${f(r.second.proxy)}`);
  }
  const ratio = (get: (x: PairedLogins['rounds'][number]) => [number, number]) => median(out.map((x) => get(x)[0] / get(x)[1]));
  return {
    rounds: out,
    firstRate: ratio((x) => [x.first.proxy.perSecond, x.first.raw.perSecond]),
    secondRate: ratio((x) => [x.second.proxy.perSecond, x.second.raw.perSecond]),
    firstCpu: ratio((x) => [x.first.proxy.cpuPerLoginUs, x.first.raw.cpuPerLoginUs]),
    secondCpu: ratio((x) => [x.second.proxy.cpuPerLoginUs, x.second.raw.cpuPerLoginUs]),
  };
}

/** The paired phase (PairedResult): both boxes running, each measured in turns with the same load. */
async function pairedPhase(raw: Box, proxy: Box, directPort: number, users: { raw: string[]; proxy: string[] }, rounds: number, seconds: number, samples: number, log: (s: string) => void, logins?: PairedLoginPlan): Promise<PairedResult> {
  const measured: PairedResult['rounds'] = [];
  const steal = stealMeter();
  const loginResult = logins ? await pairedLogins(raw, proxy, rounds, logins, log) : undefined;
  for (let n = 0; n < rounds; n++) {
    const run = (box: Box, u: string[]) => loadRound(box, box.ports, u.slice(0, 4), 4, 64, seconds, `paired-${box.name}-${n}`).then((r) => r.stanzasPerCpuSecond);
    // ABBA: a drift of the machine over the phase weighs on both
    let r: number;
    let p: number;
    if (n % 2 === 0) {
      r = await run(raw, users.raw);
      p = await run(proxy, users.proxy);
    } else {
      p = await run(proxy, users.proxy);
      r = await run(raw, users.raw);
    }
    measured.push({ raw: r, proxy: p });
    log(`  paired round ${n + 1}: raw ${(r / 1e3).toFixed(1)} k, proxy-off ${(p / 1e3).toFixed(1)} k stanzas/CPU-s (${(p / r).toFixed(2)})`);
  }
  const relayRatio = median(measured.map((m) => m.proxy / m.raw));
  const make = async (port: number, user: string, tag: string) => {
    const sock = await connect(port);
    const { jid } = await login(sock, DOMAIN, user, PASSWORD, tag);
    return new PingPong(sock, jid);
  };
  const paths = [await make(raw.ports[0]!, users.raw[4] ?? users.raw[0]!, 'lat-paired'), await make(proxy.ports[0]!, users.proxy[4] ?? users.proxy[0]!, 'lat-paired'), await make(directPort, users.raw[5] ?? users.raw[0]!, 'lat-paired-direct')];
  try {
    const got: number[][] = [[], [], []];
    for (const p of paths) await p.run(300, []);
    for (let done = 0; done < samples; done += 100) for (const [i, p] of paths.entries()) await p.run(Math.min(100, samples - done), got[i]!);
    const [rawLat, proxyLat, direct] = got.map((g) => summarize(g));
    const latency = { rawAddedP50us: rawLat!.p50us - direct!.p50us, proxyAddedP50us: proxyLat!.p50us - direct!.p50us, directP50us: direct!.p50us };
    log(`  paired latency: added p50 raw ${latency.rawAddedP50us.toFixed(0)} µs, proxy-off ${latency.proxyAddedP50us.toFixed(0)} µs (direct ${latency.directP50us.toFixed(0)} µs)`);
    const stolen = steal.stolen();
    log(`  paired steal: ${(stolen * 100).toFixed(1)}%${stolen > STEAL_WARN ? ' (figures unreliable)' : ''}`);
    return { rounds: measured, relayRatio, latency, steal: stolen, ...(loginResult ? { logins: loginResult } : {}) };
  } finally {
    for (const p of paths) p.sock.destroy();
  }
}

export async function runUsers(log: (s: string) => void): Promise<UsersResult> {
  const logins = envNumber('BENCH_USERS_LOGINS', QUICK ? 100 : 1000);
  const concurrency = envNumber('BENCH_USERS_CONCURRENCY', 16);
  const idleSizes = (process.env.BENCH_USERS_IDLE ?? (QUICK ? '200' : '1000,5000')).split(',').map(Number).sort((a, b) => a - b);
  const relaySeconds = envNumber('BENCH_USERS_RELAY_SECONDS', QUICK ? 3 : 8);
  const latencySamples = envNumber('BENCH_USERS_LATENCY_SAMPLES', QUICK ? 500 : 2000);
  const pairedRounds = envNumber('BENCH_USERS_PAIRED_ROUNDS', QUICK ? 1 : 4, 0);
  let paired: PairedResult | undefined;
  const names = (process.env.BENCH_USERS_BOXES ?? 'raw,proxy-off,proxy-off-x2,rawtls,proxy-tls').split(',') as BoxName[];
  const maxIdle = idleSizes[idleSizes.length - 1] ?? 0;
  // accounts: one set per middlebox for its logins (a first login is a first login for the proxy)
  const loginUsers = (name: BoxName) => Array.from({ length: logins }, (_, i) => `l${name.replaceAll('-', '')}${i}`);
  // before the measured logins, first logins of accounts of their own, then rounds of second logins
  // of the same accounts: the figures are a running process's, not its first thousand logins'
  // (V8 compiles the per-login code while they run: 300 warm-up logins left the compiler's threads
  // as many instructions per login as the main thread, docs/bench.md "Seventh round"). The first
  // logins of the warm-up are a fresh instance's and are reported as such (what a restart costs).
  const warmup = envNumber('BENCH_USERS_WARMUP', QUICK ? 20 : 500, 0);
  const warmRounds = envNumber('BENCH_USERS_WARMUP_ROUNDS', QUICK ? 1 : 3, 0);
  const warmUsers = (name: BoxName) => Array.from({ length: warmup }, (_, i) => `w${name.replaceAll('-', '')}${i}`);
  // idle accounts: the raw relays share theirs, each proxy has its own (first logins for both); no
  // idle phase for x2: its own max(BENCH_USERS_IDLE) first logins would add minutes to a run
  const withIdle = (name: BoxName) => instancesOf(name) === 1;
  const idleSet = (name: BoxName) => (name.startsWith('raw') ? 'raw' : name.replaceAll('-', ''));
  const idleUsers = (name: BoxName) => Array.from({ length: maxIdle }, (_, i) => `i${idleSet(name)}${i}`);
  const idleSets = [...new Set(names.filter(withIdle).map(idleSet))];
  // logins in turns: fresh accounts per box and round, and a warm-up of their own (fresh processes)
  const withPaired = pairedRounds > 0 && names.includes('raw') && names.includes('proxy-off');
  const pairedLoginCount = withPaired ? envNumber('BENCH_USERS_PAIRED_LOGINS', QUICK ? 50 : 250, 0) : 0;
  const pairedBoxes: BoxName[] = pairedLoginCount > 0 ? ['raw', 'proxy-off'] : [];
  const pairedWarm = (name: BoxName) => Array.from({ length: warmup }, (_, i) => `q${name.replaceAll('-', '')}${i}`);
  const pairedRound = (name: BoxName, n: number) => Array.from({ length: pairedLoginCount }, (_, i) => `p${name.replaceAll('-', '')}r${n}u${i}`);
  const pairedAccounts = pairedBoxes.flatMap((b) => [...pairedWarm(b), ...Array.from({ length: pairedRounds }, (_, n) => pairedRound(b, n)).flat()]);
  const all = [...names.flatMap(loginUsers), ...names.flatMap(warmUsers), ...idleSets.flatMap((set) => Array.from({ length: maxIdle }, (_, i) => `i${set}${i}`)), ...pairedAccounts];
  log(`  starting ejabberd and registering ${all.length} accounts`);
  const backend = await startEjabberd({ loglevel: 'warning', users: all.map((u) => [u, DOMAIN, PASSWORD] as [string, string, string]) });
  const beam = backend.pid?.();
  const pinned = os.cpus().length >= 2 && beam !== undefined && pin(beam, 1) && pin(process.pid, 1);
  log(pinned ? '  pinned: ejabberd and the load generator on CPU 1, each middlebox (both instances of x2) on CPU 0' : '  not pinned (one CPU, or taskset missing): CPU figures include contention');
  const boxes: UsersResult['boxes'] = {};
  try {
    const start = async (name: BoxName): Promise<Box> => {
      const box =
        name === 'raw'
          ? await rawBox('raw', backend.host, backend.plainPort!)
          : name === 'rawtls'
            ? await rawBox('rawtls', backend.host, backend.tlsPort!)
            : name === 'proxy-tls'
              ? await cliBox(name, ['--upstream', `tcp://127.0.0.1:${backend.port}`, '--upstream-ca', join(CERTS, 'ca.pem')], 1)
              : await cliBox(name, ['--upstream', `tcp://127.0.0.1:${backend.plainPort!}`, '--upstream-tls', 'off'], instancesOf(name));
      if (pinned) for (const pid of box.pids) pin(pid, 0);
      return box;
    };
    for (const name of names) {
      // the idle phase in a process of its own, freshly started: what its RSS grows by is what the
      // sessions cost, logins included, not what earlier phases left in its heap
      let idle: BoxResult['idle'] = [];
      if (withIdle(name)) {
        const fresh = await start(name);
        try {
          idle = await idlePhase(fresh, idleUsers(name), idleSizes);
        } finally {
          await fresh.stop();
        }
        log(`  ${name.padEnd(12)} idle: ${idle.map((x) => `${x.rssPerSessionKiB.toFixed(1)} KiB per session at ${x.sessions}`).join(', ')}`);
        await quiet([beam]);
      }
      const box = await start(name);
      await settle(name, log);
      const steal = stealMeter();
      try {
        const users = loginUsers(name);
        const fresh = warmup > 0 ? await warmUp(box, beam, warmUsers(name), warmRounds, concurrency, [beam, ...box.pids]) : undefined;
        const first = await loginPhase(box, beam, users, concurrency, 'first');
        await closeAll(first.sessions);
        await quiet([beam, ...box.pids]);
        const second = await loginPhase(box, beam, users, concurrency, 'second');
        await closeAll(second.sessions);
        await quiet([beam, ...box.pids]);
        const fmt = (p: LoginPhase) =>
          `${p.perSecond.toFixed(0)} logins/s, bound p50 ${(p.bound.p50us / 1e3).toFixed(1)} ms p99 ${(p.bound.p99us / 1e3).toFixed(1)} ms, presence p50 ${(p.presence.p50us / 1e3).toFixed(1)} ms p99 ${(p.presence.p99us / 1e3).toFixed(1)} ms${p.noPresence ? ` (${p.noPresence} without)` : ''}, CPU per login ${(p.cpuPerLoginUs / 1e3).toFixed(2)} ms (ejabberd ${(p.backendCpuPerLoginUs / 1e3).toFixed(2)} ms)`;
        if (fresh) log(`  ${name.padEnd(12)} fresh, first ${fresh.logins}: ${fmt(fresh)}`);
        log(`  ${name.padEnd(12)} first login:  ${fmt(first.phase)}`);
        log(`  ${name.padEnd(12)} second login: ${fmt(second.phase)}`);
        const relay = await loadRound(box, box.ports, users.slice(0, 4), 4, 64, relaySeconds, `relay-${name}`);
        log(`  ${name.padEnd(12)} relay: ${(relay.stanzasPerCpuSecond / 1e3).toFixed(1)} k stanzas/CPU-s (${relay.relayed} relayed, ${relay.cpuSeconds.toFixed(2)} CPU-s)`);
        const lat = await latencyPhase(box, backend.plainPort!, users[4] ?? users[0]!, latencySamples);
        log(`  ${name.padEnd(12)} latency: p50 ${lat.box.p50us.toFixed(0)} µs (direct ${lat.direct.p50us.toFixed(0)}, added ${lat.addedP50us.toFixed(0)}), p99 ${lat.box.p99us.toFixed(0)} µs (direct ${lat.direct.p99us.toFixed(0)})`);
        const stolen = steal.stolen();
        log(`  ${name.padEnd(12)} steal: ${(stolen * 100).toFixed(1)}% of the VM's CPU time went to the hypervisor during these phases${stolen > STEAL_WARN ? ' (figures unreliable)' : ''}`);
        boxes[name] = { ...(fresh ? { fresh } : {}), first: first.phase, second: second.phase, idle, relay: { stanzasPerCpuSecond: relay.stanzasPerCpuSecond, relayed: relay.relayed }, latency: lat, steal: stolen };
      } finally {
        await box.stop();
      }
    }
    if (withPaired) {
      await quiet([beam]);
      const raw = await start('raw');
      const proxy = await start('proxy-off');
      await settle('paired', log);
      try {
        const plan: PairedLoginPlan | undefined = pairedLoginCount > 0 ? { beam, concurrency, warm: pairedWarm, warmRounds, round: pairedRound } : undefined;
        paired = await pairedPhase(raw, proxy, backend.plainPort!, { raw: loginUsers('raw'), proxy: loginUsers('proxy-off') }, pairedRounds, relaySeconds, latencySamples, log, plan);
      } finally {
        await raw.stop();
        await proxy.stop();
      }
    }
  } finally {
    await backend.stop();
  }
  return { pinned, accounts: all.length, loadAverage: os.loadavg(), boxes, ...(paired ? { paired } : {}) };
}
