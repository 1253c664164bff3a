// (d) §6 and §5 as users see them, with real ejabberd in the loop.
//   one-to-one: a chat round trip (A -> B, B answers A) between two users through the proxy on a
//     pubsub-only ejabberd (every message a publish and a notification), against the same clients
//     connected directly to a legacy ejabberd (mod_roster, mod_offline, mod_carboncopy, mod_muc:
//     test/backends/ejabberd/ejabberd-legacy.yml) in the same run.
//   MUC fan-out: rooms of several sizes, occupants spread over two proxy instances; one occupant
//     sends groupchat messages one at a time: time until the last occupant has each, and the two
//     proxies' CPU per delivered message (it should not grow with the room's size).
// Clients are raw sockets in this process (SASL PLAIN, plaintext), the proxies child processes.
import type net from 'node:net';
import { PROFILES } from '../src/backends/profile.js';
import { chatNodeConfig } from '../src/rules/chat-nodes.js';
import { startEjabberd } from '../test/harness/ejabberd.js';
import { QUICK, connect, cpuSeconds, envNumber, login, percentile, pool, startChild, type Child } from './common.js';

const DOMAIN = 'capulet.lit';
const PASSWORD = 'secret';
const ROOM = `bench@conference.${DOMAIN}`;

/** A logged-in raw client that waits for text in what it receives. */
class Peer {
  private data = '';
  private waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  onData: ((chunk: string) => void) | undefined;

  constructor(
    readonly sock: net.Socket,
    readonly jid: string,
    rest: string,
  ) {
    this.data = rest;
    sock.on('data', (d: Buffer) => {
      const s = d.toString('utf8');
      this.onData?.(s);
      this.data = (this.data + s).slice(-65536);
      for (const w of [...this.waiters]) {
        if (w.re.test(this.data)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
    sock.on('error', () => undefined);
  }

  static async login(port: number, user: string, resource: string): Promise<Peer> {
    const sock = await connect(port);
    const { jid, rest } = await login(sock, DOMAIN, user, PASSWORD, resource);
    return new Peer(sock, jid, rest);
  }

  send(s: string): void {
    this.sock.write(s);
  }

  /** Resolves when `re` matches what arrived (since the last clear()). */
  until(re: RegExp, timeoutMs = 30_000): Promise<void> {
    if (re.test(this.data)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.jid}: timed out waiting for ${re}; received: ${this.data.slice(-600)}`)), timeoutMs);
      this.waiters.push({ re, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  clear(): void {
    this.data = '';
  }

  close(): void {
    this.sock.destroy();
  }
}

export interface RoundTrip {
  samples: number;
  p50us: number;
  p99us: number;
}

export interface FanOut {
  occupants: number;
  messages: number;
  /** time until the last occupant has a message */
  p50ms: number;
  maxMs: number;
  /** both proxies' CPU per delivered message (one message to one occupant) */
  cpuUsPerDelivery: number;
}

export interface ChatResult {
  native: RoundTrip;
  /** two publish -> notification round trips directly on the pubsub-only backend */
  floor: RoundTrip;
  /** the same on a node configured as a chat node, its subscriber a bare JID */
  chatFloor: RoundTrip;
  proxy: RoundTrip;
  ratio: number;
  fanOut: FanOut[];
}

/** A answers nothing, B echoes every RT-n back to A; A measures each round trip. */
async function roundTrips(a: Peer, b: Peer, n: number): Promise<number[]> {
  const bare = a.jid;
  b.onData = (s) => {
    for (const m of s.matchAll(/RT-(\d+)/g)) b.send(`<message to='${bare}' type='chat'><body>RE-${m[1]}</body></message>`);
  };
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    const back = a.until(new RegExp(`RE-${i}<`));
    a.send(`<message to='${b.jid}' type='chat'><body>RT-${i}</body></message>`);
    await back;
    out.push(Number(process.hrtime.bigint() - t0) / 1e3);
    a.clear();
  }
  return out;
}

async function roundTrip(port: number, n: number, tag: string): Promise<RoundTrip> {
  const a = await Peer.login(port, 'juliet', `rt-${tag}`);
  const b = await Peer.login(port, 'romeo', `rt-${tag}`);
  try {
    for (const p of [a, b]) p.send('<presence/>');
    await new Promise((r) => setTimeout(r, 500));
    await roundTrips(a, b, 20); // warm-up: nodes made, caches filled
    const s = (await roundTrips(a, b, n)).sort((x, y) => x - y);
    return { samples: s.length, p50us: percentile(s, 50), p99us: percentile(s, 99) };
  } finally {
    a.close();
    b.close();
  }
}

/**
 * The backend's own floor: one client, directly on the pubsub-only ejabberd, publishes to a node it
 * is subscribed to and waits for the notification, twice per sample (a chat round trip through the
 * proxy is two publishes and their notifications): what §6 costs before the proxy adds anything.
 */
async function pubsubFloor(port: number, n: number, like: 'default' | 'chat' = 'default'): Promise<RoundTrip> {
  const a = await Peer.login(port, 'juliet', `floor-${like}`);
  try {
    a.send('<presence/>');
    const node = `bench-floor-${like}`;
    // 'chat': the node configured as §6's chat nodes are (chatNodeConfig) and the bare JID subscribed
    const configure =
      like === 'chat'
        ? `<configure><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>${Object.entries(chatNodeConfig(PROFILES.ejabberd))
            .map(([k, v]) => `<field var='${k}'><value>${String(v)}</value></field>`)
            .join('')}</x></configure>`
        : '';
    a.send(`<iq type='set' id='c1' to='pubsub.${DOMAIN}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='${node}'/>${configure}</pubsub></iq>`);
    await a.until(/id=["']c1["']/);
    const subscriber = like === 'chat' ? a.jid.slice(0, a.jid.indexOf('/')) : a.jid;
    a.send(`<iq type='set' id='s1' to='pubsub.${DOMAIN}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='${node}' jid='${subscriber}'/></pubsub></iq>`);
    await a.until(/id=["']s1["']/);
    const once = async (i: number) => {
      const got = a.until(new RegExp(`FL-${i}<`));
      a.send(`<iq type='set' id='p${i}' to='pubsub.${DOMAIN}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='${node}'><item><message xmlns='jabber:client'><body>FL-${i}</body></message></item></publish></pubsub></iq>`);
      await got;
      a.clear();
    };
    const out: number[] = [];
    for (let i = 0; i < n + 20; i++) {
      const t0 = process.hrtime.bigint();
      await once(2 * i);
      await once(2 * i + 1);
      if (i >= 20) out.push(Number(process.hrtime.bigint() - t0) / 1e3);
    }
    out.sort((x, y) => x - y);
    return { samples: out.length, p50us: percentile(out, 50), p99us: percentile(out, 99) };
  } finally {
    a.close();
  }
}

async function fanOut(ports: number[], proxies: Child[], occupants: number, messages: number, log: (s: string) => void): Promise<FanOut> {
  const room = ROOM.replace('bench@', `bench${occupants}@`);
  const peers = await pool(Array.from({ length: occupants }, (_, i) => i), 8, async (i) => {
    const p = await Peer.login(ports[i % ports.length]!, `m${i}`, 'bench');
    p.send('<presence/>');
    return p;
  });
  try {
    // joins one after another: each joiner reads the occupant list
    for (const [i, p] of peers.entries()) {
      p.send(`<presence to='${room}/m${i}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>`);
      await p.until(/code=["']110["']/, 60_000);
    }
    log(`  fan-out ${occupants}: joined`);
    const times: number[] = [];
    const before = await Promise.all(proxies.map((c) => c.stats()));
    for (let k = 0; k < messages; k++) {
      const all = Promise.all(peers.map((p) => p.until(new RegExp(`GC-${k}<`), 60_000)));
      const t0 = process.hrtime.bigint();
      peers[0]!.send(`<message to='${room}' type='groupchat'><body>GC-${k}</body></message>`);
      await all;
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      for (const p of peers) p.clear();
    }
    const after = await Promise.all(proxies.map((c) => c.stats()));
    const cpu = after.reduce((sum, s, i) => sum + cpuSeconds(s.cpu) - cpuSeconds(before[i]!.cpu), 0);
    const sorted = [...times].sort((a, b) => a - b);
    const r = { occupants, messages, p50ms: percentile(sorted, 50), maxMs: sorted[sorted.length - 1]!, cpuUsPerDelivery: (cpu * 1e6) / (messages * occupants) };
    log(`  fan-out ${occupants}: last occupant after p50 ${r.p50ms.toFixed(1)} ms (max ${r.maxMs.toFixed(1)} ms), ${r.cpuUsPerDelivery.toFixed(0)} µs proxy CPU per delivery`);
    return r;
  } finally {
    for (const p of peers) p.close();
  }
}

export async function runChat(log: (s: string) => void): Promise<ChatResult> {
  const n = envNumber('BENCH_CHAT_ROUNDTRIPS', QUICK ? 100 : 500);
  const sizes = (process.env.BENCH_MUC_SIZES ?? (QUICK ? '10,50' : '10,100,500')).split(',').map(Number);
  const messages = envNumber('BENCH_MUC_MESSAGES', QUICK ? 5 : 20);
  const max = Math.max(...sizes);
  const users: Array<[string, string, string]> = [['juliet', DOMAIN, PASSWORD], ['romeo', DOMAIN, PASSWORD], ...Array.from({ length: max }, (_, i): [string, string, string] => [`m${i}`, DOMAIN, PASSWORD])];
  const [pubsubOnly, legacy] = await Promise.all([startEjabberd({ users, loglevel: 'warning' }), startEjabberd({ users: users.slice(0, 2), loglevel: 'warning', template: 'ejabberd-legacy.yml' })]);
  const proxies = [0, 1].map((i) => startChild(`chat-proxy-${i}`, 'middlebox.js', ['proxy', pubsubOnly.host, String(pubsubOnly.plainPort), 'warn']));
  try {
    const ports = (await Promise.all(proxies.map((c) => c.ready()))).map((m) => m.port as number);
    const native = await roundTrip(legacy.plainPort!, n, 'native');
    const proxy = await roundTrip(ports[0]!, n, 'proxy');
    const floor = await pubsubFloor(pubsubOnly.plainPort!, n);
    const chatFloor = await pubsubFloor(pubsubOnly.plainPort!, n, 'chat');
    log(`  chat round trip: legacy ejabberd p50 ${native.p50us.toFixed(0)} µs (p99 ${native.p99us.toFixed(0)}), through the proxy on pubsub-only ejabberd p50 ${proxy.p50us.toFixed(0)} µs (p99 ${proxy.p99us.toFixed(0)}); the backend's floor, two publishes and their notifications directly on it: p50 ${floor.p50us.toFixed(0)} µs (default node), ${chatFloor.p50us.toFixed(0)} µs (a chat node's configuration, bare-JID subscription)`);
    const fan: FanOut[] = [];
    for (const size of sizes) fan.push(await fanOut(ports, proxies, size, messages, log));
    return { native, floor, chatFloor, proxy, ratio: proxy.p50us / native.p50us, fanOut: fan };
  } finally {
    await Promise.all(proxies.map((c) => c.stop()));
    await Promise.all([pubsubOnly.stop(), legacy.stop()]);
  }
}
