// (b) The real ejabberd in the loop. Clients (raw sockets in this process, SASL PLAIN over plaintext)
// send chat messages to their own full JID through the middlebox (the proxy, or the raw relay, each
// in its own process, in front of ejabberd's plaintext c2s port) and count what comes back, keeping
// a bounded window of messages in flight per connection. Every message crosses the middlebox twice
// (client -> ejabberd, ejabberd -> client), so relayed stanzas = sent + received in the window.
// Then one client does request/response round trips (a message to itself, wait for it) directly to
// ejabberd, through the raw relay and through the proxy, interleaved in blocks.
import type net from 'node:net';
import { startEjabberd } from '../test/harness/ejabberd.js';
import type { Backend } from '../test/harness/common.js';
import { Child, QUICK, connect, cpuSeconds, envNumber, login, percentile, pool, sleep, startChild, syscallsPer, type MiddleboxRun, type Stats } from './common.js';

const DOMAIN = 'capulet.lit';
const PASSWORD = 'secret';
/** in every benchmark message's body, once: what the clients count (ejabberd rewrites the attributes) */
const END = 'BENCHMARK-MSG-';

export interface LoadRun extends MiddleboxRun {
  relayed: number;
}

export interface LoadMode {
  /** all rounds pooled: relayed stanzas / middlebox CPU seconds */
  stanzasPerCpuSecond: number;
  runs: LoadRun[];
}

export interface Latency {
  samples: number;
  p50us: number;
  p90us: number;
  p99us: number;
  maxUs: number;
  meanUs: number;
}

export interface EjabberdResult {
  connections: number;
  window: number;
  seconds: number;
  proxy: LoadMode;
  raw: LoadMode;
  ratio: number;
  /** BENCH_EJ_PING_ONLY=1: the proxy with the ping rule only, in the same rounds (what the rules cost) */
  proxyPingOnly?: LoadMode;
  latency: { direct: Latency; raw: Latency; proxy: Latency };
  added: { proxy: { p50us: number; p99us: number }; raw: { p50us: number; p99us: number } };
}

function message(jid: string, n: number): string {
  return `<message to='${jid}' type='chat' id='b${n}'><body>${END}${n}: but soft, what light through yonder window breaks?</body></message>`;
}

/** Counts END in a byte stream, across chunk boundaries. */
class Counter {
  private tail = '';
  count(chunk: Buffer): number {
    const s = this.tail + chunk.toString('latin1');
    let n = 0;
    let end = 0;
    for (let i = s.indexOf(END); i !== -1; i = s.indexOf(END, i + END.length)) {
      n++;
      end = i + END.length;
    }
    this.tail = s.slice(Math.max(end, s.length - (END.length - 1)));
    return n;
  }
}

/** A logged-in connection that keeps `window` messages to itself in flight. */
class Pump {
  sent = 0;
  received = 0;
  private running = false;
  private readonly counter = new Counter();
  private seq = 0;

  constructor(
    readonly sock: net.Socket,
    readonly jid: string,
    private readonly window: number,
  ) {
    sock.on('data', (d: Buffer) => {
      const n = this.counter.count(d);
      this.received += n;
      if (this.running && n > 0) this.send(n);
    });
    sock.on('error', () => undefined);
  }

  private send(n: number): void {
    let out = '';
    for (let i = 0; i < n; i++) out += message(this.jid, ++this.seq);
    this.sent += n;
    this.sock.write(out);
  }

  start(): void {
    this.running = true;
    this.send(this.window);
  }

  stop(): void {
    this.running = false;
  }

  get inFlight(): number {
    return this.sent - this.received;
  }
}

/** Connection i through ports[i % ports.length] (the instances of one middlebox). */
async function openPumps(ports: number[], users: string[], connections: number, window: number, tag: string): Promise<Pump[]> {
  return pool(Array.from({ length: connections }, (_, i) => i), 8, async (i) => {
    const sock = await connect(ports[i % ports.length]!);
    const { jid, rest } = await login(sock, DOMAIN, users[i % users.length]!, PASSWORD, `${tag}-${i}`);
    if (rest.includes(END)) throw new Error('unexpected message before the benchmark started');
    return new Pump(sock, jid, window);
  });
}

export async function loadRound(child: { stats(): Promise<Stats> }, ports: number[], users: string[], connections: number, window: number, seconds: number, tag: string): Promise<LoadRun> {
  const pumps = await openPumps(ports, users, connections, window, tag);
  try {
    for (const p of pumps) p.start();
    await sleep(QUICK ? 500 : 1500); // warm-up
    const total = () => pumps.reduce((a, p) => a + p.sent + p.received, 0);
    const c0 = total();
    const s0 = await child.stats();
    const t0 = process.hrtime.bigint();
    await sleep(seconds * 1000);
    const c1 = total();
    const s1 = await child.stats();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    for (const p of pumps) p.stop();
    const deadline = Date.now() + 10_000;
    while (pumps.some((p) => p.inFlight > 0) && Date.now() < deadline) await sleep(20);
    const lost = pumps.reduce((a, p) => a + p.inFlight, 0);
    if (lost > 0) throw new Error(`${lost} messages never came back`);
    const cpu = cpuSeconds(s1.cpu) - cpuSeconds(s0.cpu);
    const relayed = c1 - c0;
    return {
      relayed, cpuSeconds: cpu, systemSeconds: (s1.cpu.system - s0.cpu.system) / 1e6, wallSeconds: wall,
      stanzasPerCpuSecond: relayed / cpu, stanzasPerSecond: relayed / wall,
      readsPerStanza: syscallsPer(s0, s1, relayed).reads,
      writesPerStanza: syscallsPer(s0, s1, relayed).writes,
    };
  } finally {
    for (const p of pumps) {
      p.sock.end('</stream:stream>');
      p.sock.destroy();
    }
    await sleep(200);
  }
}

/** One connection, one message at a time: round-trip times in microseconds. */
export class PingPong {
  private readonly counter = new Counter();
  private waiter: (() => void) | undefined;
  private seq = 0;

  constructor(
    readonly sock: net.Socket,
    readonly jid: string,
  ) {
    sock.on('data', (d: Buffer) => {
      if (this.counter.count(d) > 0) this.waiter?.();
    });
    sock.on('error', () => undefined);
  }

  async run(n: number, out: number[]): Promise<void> {
    for (let i = 0; i < n; i++) {
      const done = new Promise<void>((resolve) => (this.waiter = resolve));
      const t0 = process.hrtime.bigint();
      this.sock.write(message(this.jid, ++this.seq));
      await done;
      out.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
  }
}

export function summarize(samples: number[]): Latency {
  const s = [...samples].sort((a, b) => a - b);
  return { samples: s.length, p50us: percentile(s, 50), p90us: percentile(s, 90), p99us: percentile(s, 99), maxUs: s[s.length - 1]!, meanUs: s.reduce((a, b) => a + b, 0) / s.length };
}

async function latency(ports: { direct: number; raw: number; proxy: number }, user: string, total: number, log: (s: string) => void): Promise<EjabberdResult['latency']> {
  const names = ['direct', 'raw', 'proxy'] as const;
  const clients: Record<string, PingPong> = {};
  for (const name of names) {
    const sock = await connect(ports[name]);
    const { jid } = await login(sock, DOMAIN, user, PASSWORD, `latency-${name}`);
    clients[name] = new PingPong(sock, jid);
  }
  try {
    const samples: Record<string, number[]> = { direct: [], raw: [], proxy: [] };
    for (const name of names) await clients[name]!.run(300, []); // warm-up
    const block = 100;
    for (let done = 0; done < total; done += block) {
      for (const name of names) await clients[name]!.run(Math.min(block, total - done), samples[name]!);
    }
    const out = { direct: summarize(samples.direct!), raw: summarize(samples.raw!), proxy: summarize(samples.proxy!) };
    for (const name of names) log(`  latency ${name.padEnd(6)}: p50 ${out[name].p50us.toFixed(0)} µs, p90 ${out[name].p90us.toFixed(0)} µs, p99 ${out[name].p99us.toFixed(0)} µs, max ${out[name].maxUs.toFixed(0)} µs (${out[name].samples} round trips)`);
    return out;
  } finally {
    for (const c of Object.values(clients)) c.sock.destroy();
  }
}

export async function runEjabberd(log: (s: string) => void): Promise<EjabberdResult> {
  const connections = envNumber('BENCH_EJ_CONNECTIONS', 8);
  const window = envNumber('BENCH_EJ_WINDOW', 16);
  const seconds = envNumber('BENCH_EJ_SECONDS', QUICK ? 3 : 6);
  const rounds = envNumber('BENCH_EJ_ROUNDS', QUICK ? 1 : 3);
  const latencySamples = envNumber('BENCH_LATENCY_SAMPLES', QUICK ? 500 : 2000);
  const userCount = 4;
  const users = Array.from({ length: userCount }, (_, i) => `bench${i + 1}`);
  log('  starting ejabberd (loglevel warning) and registering users');
  const backend: Backend = await startEjabberd({ loglevel: 'warning', users: users.map((u) => [u, DOMAIN, PASSWORD] as [string, string, string]) });
  const children: Child[] = [];
  try {
    const plain = String(backend.plainPort!);
    const raw = startChild('ejabberd-raw', 'middlebox.js', ['raw', backend.host, plain, 'info']);
    const proxy = startChild('ejabberd-proxy', 'middlebox.js', ['proxy', backend.host, plain, 'info']);
    children.push(raw, proxy);
    const rawPort = ((await raw.ready()) as { port: number }).port;
    const proxyPort = ((await proxy.ready()) as { port: number }).port;
    type Mode = 'raw' | 'proxy' | 'proxy-ping';
    const modes: Array<[Mode, Child, number]> = [['raw', raw, rawPort], ['proxy', proxy, proxyPort]];
    if (process.env.BENCH_EJ_PING_ONLY === '1') {
      const ping = startChild('ejabberd-proxy-ping', 'middlebox.js', ['proxy', backend.host, plain, 'info'], { env: { BENCH_PROXY_RULES: 'ping' } });
      children.push(ping);
      modes.push(['proxy-ping', ping, ((await ping.ready()) as { port: number }).port]);
    }
    // latency first, while the middleboxes carry no garbage from the load rounds (warmed up by its own
    // first round trips)
    const lat = await latency({ direct: backend.plainPort!, raw: rawPort, proxy: proxyPort }, users[0]!, latencySamples, log);
    const runs: Record<Mode, LoadRun[]> = { proxy: [], raw: [], 'proxy-ping': [] };
    for (let r = 0; r < rounds; r++) {
      for (const [mode, child, port] of modes) {
        const run = await loadRound(child, [port], users, connections, window, seconds, `${mode}${r}`);
        runs[mode].push(run);
        log(`  round ${r + 1} ${mode.padEnd(10)}: ${(run.stanzasPerCpuSecond / 1e3).toFixed(1)} k stanzas/CPU-s of the middlebox (${run.relayed} relayed, ${run.cpuSeconds.toFixed(2)} CPU-s of which ${run.systemSeconds.toFixed(2)} system, ${(run.stanzasPerSecond / 1e3).toFixed(1)} k/s wall, ${run.readsPerStanza.toFixed(2)} reads + ${run.writesPerStanza.toFixed(2)} writes per stanza)`);
      }
    }
    const pooled = (xs: LoadRun[]): LoadMode => ({
      stanzasPerCpuSecond: xs.reduce((a, r) => a + r.relayed, 0) / xs.reduce((a, r) => a + r.cpuSeconds, 0),
      runs: xs,
    });
    const proxyMode = pooled(runs.proxy);
    const rawMode = pooled(runs.raw);
    return {
      connections,
      window,
      seconds,
      proxy: proxyMode,
      raw: rawMode,
      ratio: proxyMode.stanzasPerCpuSecond / rawMode.stanzasPerCpuSecond,
      ...(runs['proxy-ping'].length > 0 ? { proxyPingOnly: pooled(runs['proxy-ping']) } : {}),
      latency: lat,
      added: {
        proxy: { p50us: lat.proxy.p50us - lat.direct.p50us, p99us: lat.proxy.p99us - lat.direct.p99us },
        raw: { p50us: lat.raw.p50us - lat.direct.p50us, p99us: lat.raw.p99us - lat.direct.p99us },
      },
    };
  } finally {
    for (const c of children) await c.stop();
    await backend.stop();
  }
}
