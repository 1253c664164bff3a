// XMPP over WebSocket (RFC 7395): no stream document around the elements, but one complete
// top-level element per text message, both ways. The stream header is <open/>, its end <close/>
// (urn:ietf:params:xml:ns:xmpp-framing); the restart after SASL is a new <open/> on the same socket;
// TLS is the URL's (wss), so there is no STARTTLS. Each element must be a document of its own, with
// every namespace it uses declared (§3.3.3): what a TCP stream header declares once (jabber:client,
// the stream: prefix) is declared here on each element that relies on it.
//
// Input is parsed with the same tokenizer as TCP, in its framed mode, so every restricted-XML rule
// and limit is the same; a message must hold exactly one element (whitespace around it allowed),
// and is handed on only once the whole message passed.
import { isAscii } from 'node:buffer';
import type { WebSocket, RawData } from 'ws';
import { beginInput, endInput } from './connection.js';
import { FORBIDDEN_CONTROL } from './chars.js';
import { StreamError } from './errors.js';
import type { Framing, FramingSink } from './framing.js';
import type { Stanza } from './stanza.js';
import { NS_STREAM, Tokenizer, type TokenizerHandler, type TokenizerLimits } from './tokenizer.js';
import type { Attrs } from './xml.js';

export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const NS_CLIENT = 'jabber:client';

/** ws's send buffer above which we report backpressure (TCP: the socket's own high-water mark) */
const HIGH_WATER = 64 * 1024;

/** WebSocket close codes (RFC 6455 §7.4.1) */
export const WS_NORMAL = 1000;
const WS_GOING_AWAY = 1001;
const WS_NO_STATUS = 1005;
const WS_ONLY = /^[ \t\r\n]*$/;

function escapeAttr(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');
}

/**
 * Declare on an element's start tag the namespaces a TCP stream header would have given it: the
 * default namespace jabber:client for an unprefixed element without xmlns, the stream prefix for
 * stream:features / stream:error. `raw` is one well-formed element (the backend's, checked by the
 * tokenizer, or the proxy's own), so a plain scan of its first tag is enough; attribute values may
 * hold '>' and '/', hence the quote handling.
 */
export function declareNamespaces(raw: string): string {
  let i = raw.indexOf('<');
  if (i === -1) return raw;
  const nameStart = i + 1;
  i = nameStart;
  while (i < raw.length && !' \t\r\n/>'.includes(raw[i]!)) i++;
  const name = raw.slice(nameStart, i);
  const nameEnd = i;
  const colon = name.indexOf(':');
  const wanted = colon === -1 ? 'xmlns' : `xmlns:${name.slice(0, colon)}`;
  const ns = colon === -1 ? NS_CLIENT : name.slice(0, colon) === 'stream' ? NS_STREAM : undefined;
  if (ns === undefined) return raw; // a prefix no stream header declares: the element carries its own
  // attributes of the start tag
  for (;;) {
    while (i < raw.length && ' \t\r\n'.includes(raw[i]!)) i++;
    if (i >= raw.length || raw[i] === '>' || raw[i] === '/') break;
    const eq = raw.indexOf('=', i);
    if (eq === -1) break;
    const attr = raw.slice(i, eq).trim();
    if (attr === wanted) return raw;
    let q = eq + 1;
    while (q < raw.length && ' \t\r\n'.includes(raw[q]!)) q++;
    const close = raw.indexOf(raw[q]!, q + 1);
    if (close === -1) break;
    i = close + 1;
  }
  return `${raw.slice(0, nameEnd)} ${wanted}='${ns}'${raw.slice(nameEnd)}`;
}

export class WsFraming implements Framing, TokenizerHandler {
  readonly kind = 'websocket';
  readonly footer = `<close xmlns='${NS_FRAMING}'/>`;
  bytesIn = 0;
  private sink!: FramingSink;
  private readonly tokenizer: Tokenizer;
  /** elements of the message being parsed: handed on once it proved to hold exactly one */
  private parsed: Stanza[] = [];
  /** the next element must be <open/> (at the start and after SASL success) */
  private awaitingOpen = true;
  private full = false;
  private closed = false;
  private lastError: Error | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly limits: TokenizerLimits,
  ) {
    this.tokenizer = new Tokenizer(this, limits, true);
  }

  attach(sink: FramingSink): void {
    this.sink = sink;
    this.ws.on('message', (data, isBinary) => {
      beginInput(); // what the message makes is flushed when it is done (connection.ts)
      try {
        this.receive(data, isBinary);
      } finally {
        endInput();
      }
    });
    // ws answers pings itself; a protocol error (bad UTF-8, a message over maxPayload...) makes it
    // close with the matching code (1007, 1009...) and emit 'error' before 'close'
    this.ws.on('error', (err) => (this.lastError = err));
    this.ws.on('close', (code: number) => {
      this.closed = true;
      const normal = code === WS_NORMAL || code === WS_GOING_AWAY || code === WS_NO_STATUS;
      this.sink.onClose(this.lastError ?? (normal ? undefined : new Error(`WebSocket closed with code ${code}`)));
    });
  }

  header(attrs: Attrs): string {
    let s = `<open xmlns='${NS_FRAMING}'`;
    for (const [k, v] of Object.entries(attrs)) s += ` ${k}='${escapeAttr(v)}'`;
    return s + '/>';
  }

  // ---- input ----

  private receive(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    this.bytesIn += buf.length;
    try {
      // ws has checked that a text message is valid UTF-8 (else it closes with 1007)
      if (isBinary) throw new StreamError('bad-format', 'XMPP over WebSocket uses text messages only');
      if (buf.length > this.limits.maxSize) throw new StreamError('policy-violation', `message larger than ${this.limits.maxSize} bytes`);
      const bytes = buf.toString('latin1');
      if (FORBIDDEN_CONTROL.test(bytes)) throw new StreamError('not-well-formed', 'control character');
      this.parsed = [];
      this.tokenizer.write(bytes, isAscii(buf));
      if (this.tokenizer.partial) throw new StreamError('bad-format', 'a WebSocket message must hold one complete element');
      if (this.parsed.length > 1) throw new StreamError('bad-format', 'a WebSocket message must hold one element, not several');
      const s = this.parsed[0];
      this.parsed = [];
      if (s) this.dispatch(s);
      else this.sink.onWhitespace?.();
      this.sink.onChunk(false);
    } catch (err) {
      if (!(err instanceof StreamError)) throw err;
      this.tokenizer.close();
      this.sink.onViolation(err);
    }
  }

  // the tokenizer's events: elements wait for the end of their message (see receive)
  onStreamStart(): void {
    /* never in framed mode */
  }

  onStreamEnd(): void {
    /* never in framed mode */
  }

  onElement(s: Stanza): void {
    this.parsed.push(s);
  }

  onWhitespace(): void {
    /* counted by receive: a message of whitespace only is a keepalive */
  }

  private dispatch(s: Stanza): void {
    const framing = s.attrs.xmlns === NS_FRAMING;
    if (framing && s.name === 'open') {
      this.awaitingOpen = false;
      // what the session checks in a TCP header: the content namespace is implied by RFC 7395
      const { xmlns: _ns, ...rest } = s.attrs;
      void _ns;
      this.sink.onStreamStart('stream:stream', { ...rest, xmlns: NS_CLIENT, 'xmlns:stream': NS_STREAM });
      return;
    }
    if (this.awaitingOpen) throw new StreamError('invalid-namespace', `the stream must open with <open xmlns='${NS_FRAMING}'/>`);
    if (framing && s.name === 'close') {
      this.sink.onStreamEnd();
      return;
    }
    this.sink.onElement(s);
  }

  restart(): void {
    this.awaitingOpen = true;
    this.tokenizer.reset(true);
  }

  stopParsing(): void {
    this.tokenizer.close();
  }

  // ---- output ----

  write(units: readonly string[]): boolean {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return true;
    for (const u of units) {
      // a whitespace keepalive (relayed from the other leg) has no message form: a ping is its equivalent
      if (WS_ONLY.test(u)) this.ws.ping();
      else this.ws.send(Buffer.from(declareNamespaces(u), 'latin1'), { binary: false }, () => this.sent());
    }
    if (this.ws.bufferedAmount > HIGH_WATER) this.full = true;
    return !this.full;
  }

  private sent(): void {
    if (this.full && this.ws.bufferedAmount <= HIGH_WATER / 2) {
      this.full = false;
      this.sink.onBackpressure(false);
    }
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  /** RFC 7395 §3.6: after the <close/> exchange (or a stream error) the server closes the WebSocket. */
  end(): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(WS_NORMAL);
  }

  destroy(): void {
    this.tokenizer.close();
    this.ws.terminate();
  }
}
