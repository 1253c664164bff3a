// WebSocket clients for the tests: @xmpp/client's websocket transport needs a global WebSocket,
// which Node 20 lacks (ws's class stands in, verifying the test certificate for capulet.lit), and a
// raw client that sends exact messages and records every message and the close code.
import { WebSocket, type ClientOptions } from 'ws';

const SERVERNAME = 'capulet.lit';
/** ws hands its options to tls.connect: the name to verify the certificate for (the URL says 127.0.0.1) */
const TLS_NAME = { servername: SERVERNAME } as ClientOptions;

/** ws's WebSocket as the browser's, for @xmpp/websocket; wss:// to 127.0.0.1 is checked as capulet.lit */
class TestWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols, TLS_NAME);
  }
}

export function installGlobalWebSocket(): void {
  (globalThis as { WebSocket?: unknown }).WebSocket ??= TestWebSocket;
}

export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
export const OPEN = (domain: string) => `<open xmlns='${NS_FRAMING}' to='${domain}' version='1.0'/>`;

export class RawWs {
  readonly messages: string[] = [];
  closeCode: number | undefined;
  private waiters: Array<() => void> = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      this.messages.push(isBinary ? `(binary ${String(data)})` : String(data));
      this.wake();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.wake();
    });
    ws.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Open a WebSocket; rejects with the HTTP status when the handshake is refused. */
  static connect(url: string, opts: { protocols?: string[]; origin?: string } = {}): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, opts.protocols ?? ['xmpp'], { ...TLS_NAME, ...(opts.origin ? { origin: opts.origin } : {}) });
      ws.once('open', () => resolve(new RawWs(ws)));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  send(text: string | Buffer): void {
    this.ws.send(text);
  }

  private async until<T>(probe: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = probe();
      if (v !== undefined) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; received: ${this.messages.slice(-5).join(' | ')}; close ${this.closeCode}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The first message (from index `from` on) matching `re`. */
  expect(re: RegExp, from = 0, timeoutMs = 5000): Promise<string> {
    return this.until(() => this.messages.slice(from).find((m) => re.test(m)), String(re), timeoutMs);
  }

  waitClosed(timeoutMs = 5000): Promise<number> {
    return this.until(() => this.closeCode, 'the close', timeoutMs);
  }

  /** <open/>, PLAIN, the new <open/> after success, bind: a logged-in raw session. */
  static async login(url: string, domain: string, user: string, password: string, resource = 'raw'): Promise<RawWs> {
    const c = await RawWs.connect(url);
    c.send(OPEN(domain));
    await c.expect(/<stream:features/);
    const n = c.messages.length;
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`);
    await c.expect(/^<success/, n);
    const m = c.messages.length;
    c.send(OPEN(domain));
    await c.expect(/<stream:features/, m);
    c.send(`<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    await c.expect(/<jid>[^<]+<\/jid>/, m);
    return c;
  }

  close(): void {
    this.ws.terminate();
  }
}
