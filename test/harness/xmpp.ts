// Clients for the tests: @xmpp/client (a real library) and a raw socket client for what a library
// would never send (bad XML, forged stanzas, exact bytes).
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { client as xmppClient, xml } from '@xmpp/client';
import type { Element } from 'ltx';
import { CERTS } from './common.js';
import { fixXmppOpenRace } from '../clients/xmpp-open-race.js';

// @xmpp/client 0.14 can miss the server's stream header when it arrives before its own header write
// completes (xmppjs/xmpp.js#889): a library bug, worked around for every test (see the file)
fixXmppOpenRace();

export { xml };

export type XmppClient = ReturnType<typeof xmppClient>;

export interface ConnectOptions {
  port: number;
  domain: string;
  username: string;
  password: string;
  resource?: string;
  /** force one SASL mechanism (default: the library's choice) */
  mechanism?: string;
  /** false: refuse to use STARTTLS even if offered (the library then stays in plaintext) */
  tls?: boolean;
  /** another service than xmpp://127.0.0.1:port: xmpps://… (direct TLS), ws://… or wss://… (WebSocket) */
  service?: string;
}

/** Connect and log in with @xmpp/client; resolves once online. Stanzas are collected in `received`. */
export async function connect(opts: ConnectOptions): Promise<XmppClient & { received: Element[] }> {
  const c = xmppClient({
    service: opts.service ?? `xmpp://127.0.0.1:${opts.port}`,
    domain: opts.domain,
    resource: opts.resource ?? 'test',
    timeout: 10_000, // SCRAM with 10,000 iterations on a loaded 2-core machine can take seconds
    credentials: async (authenticate: (creds: object, mech: string) => Promise<void>, mechanisms: string[]) => {
      const mech = opts.mechanism ?? mechanisms[0]!;
      if (!mechanisms.includes(mech)) throw new Error(`mechanism ${mech} not offered (offered: ${mechanisms.join(', ')})`);
      await authenticate({ username: opts.username, password: opts.password }, mech);
    },
  }) as XmppClient & { received: Element[] };
  c.reconnect.stop();
  if (opts.tls === false) c.streamFeatures.use('starttls', 'urn:ietf:params:xml:ns:xmpp-tls', async (_ctx: unknown, next: () => Promise<void>) => next());
  c.received = [];
  c.on('stanza', (s: Element) => c.received.push(s));
  c.on('error', () => undefined); // failures surface through start() or the test's own waits
  await c.start();
  return c;
}

/** Wait until `pred` matches a stanza the client received (already or later). */
export function waitFor(c: { received: Element[]; on: Function; off: Function }, pred: (s: Element) => boolean, timeoutMs = 10_000): Promise<Element> {
  const found = c.received.find(pred);
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const onStanza = (s: Element) => {
      if (pred(s)) {
        clearTimeout(timer);
        c.off('stanza', onStanza);
        resolve(s);
      }
    };
    const timer = setTimeout(() => {
      c.off('stanza', onStanza);
      reject(new Error('timed out waiting for a stanza'));
    }, timeoutMs);
    c.on('stanza', onStanza);
  });
}

export const HEADER = (domain: string) =>
  `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;

/** A raw XMPP socket: write bytes, read everything as text, optionally STARTTLS + SASL PLAIN + bind. */
export class RawClient {
  socket: net.Socket;
  data = '';
  closed = false;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.attach();
  }

  private attach(): void {
    this.socket.setEncoding('utf8');
    this.socket.on('data', (d: string) => {
      this.data += d;
      this.wake();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    this.socket.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  /**
   * Connect with `preface` written first (a PROXY protocol header), then with `directTls` a TLS
   * handshake (XEP-0368), verifying the test certificate for capulet.lit.
   */
  static async connectWith(port: number, opts: { preface?: Buffer; directTls?: boolean; alpn?: string[] }): Promise<RawClient> {
    const plain = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
    if (opts.preface) plain.write(opts.preface);
    if (!opts.directTls) return new RawClient(plain);
    const secure = tls.connect({ socket: plain, servername: 'capulet.lit', ca: readFileSync(join(CERTS, 'ca.pem')), ...(opts.alpn ? { ALPNProtocols: opts.alpn } : {}) });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    return new RawClient(secure);
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Wait until the received text matches; returns the match. */
  async expect(re: RegExp, timeoutMs = 5000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.data);
      if (m) return m;
      if (this.closed) throw new Error(`connection closed; received: ${this.data.slice(-500)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; received: ${this.data.slice(-500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection not closed');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** STARTTLS on this socket (verifying the test certificate for `domain`). */
  async startTls(domain: string): Promise<void> {
    this.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
    await this.expect(/<proceed[^>]*\/>/);
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('close');
    const secure = tls.connect({ socket: this.socket, servername: domain, ca: readFileSync(join(CERTS, 'ca.pem')) });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.data = '';
    this.attach();
  }

  /** Open, (STARTTLS,) PLAIN up to SASL success: what comes next is the client's restart header. */
  static async authenticated(port: number | RawClient, domain: string, user: string, password: string, useTls = true): Promise<RawClient> {
    const c = typeof port === 'number' ? await RawClient.connect(port) : port;
    c.send(HEADER(domain));
    await c.expect(/<\/stream:features>/);
    if (useTls && /<starttls/.test(c.data)) {
      await c.startTls(domain);
      c.send(HEADER(domain));
      await c.expect(/<\/stream:features>/);
    }
    const auth = Buffer.from(`\0${user}\0${password}`).toString('base64');
    c.data = '';
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${auth}</auth>`);
    await c.expect(/<success[^>]*(\/>|<\/success>)/);
    c.data = '';
    return c;
  }

  /** Open, (STARTTLS,) PLAIN, bind: a logged-in raw session. */
  static async login(port: number | RawClient, domain: string, user: string, password: string, resource = 'raw', useTls = true): Promise<RawClient> {
    const c = await RawClient.authenticated(port, domain, user, password, useTls);
    c.send(HEADER(domain));
    await c.expect(/<\/stream:features>/);
    c.data = '';
    c.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    await c.expect(/<jid>[^<]+<\/jid>/);
    return c;
  }

  close(): void {
    this.socket.destroy();
  }
}
