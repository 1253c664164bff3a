// One XML stream over one socket (either leg): bytes in -> checked -> tokenizer events out; elements
// and raw bytes out, batched into one socket write per tick. It also swaps the socket for a TLS one
// (STARTTLS on either side) and closes the stream politely (stream error, then </stream:stream>, then
// the socket). It knows nothing about SASL, binding or rules.
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import type { Element } from 'ltx';
import { FORBIDDEN_CONTROL, textToBytes } from './chars.js';
import { NS_STREAMS, StreamError, type StreamErrorCondition } from './errors.js';
import { Tokenizer, type TokenizerHandler, type TokenizerLimits } from './tokenizer.js';
import type { Stanza } from './stanza.js';

export interface StreamEvents extends TokenizerHandler {
  /** the peer broke the stream rules (we already know what to tell it) */
  onViolation(err: StreamError): void;
  /** the socket is gone (after our close, the peer's close, or an error) */
  onClose(err?: Error): void;
  /** our writes are queuing up (true) or drained (false): the other leg should pause/resume reading */
  onBackpressure?(full: boolean): void;
  /** a chunk was parsed; `partial`: it left the start of a header or top-level element unfinished */
  onChunk?(partial: boolean): void;
}

/** Time allowed for the peer to answer our </stream:stream> before the socket is destroyed. */
const CLOSE_GRACE_MS = 2000;

export class XmlStream implements TokenizerHandler {
  socket: Socket;
  private readonly tokenizer: Tokenizer;
  private carry: Buffer | null = null;
  private out: string[] = [];
  private flushScheduled = false;
  private full = false;
  private closing = false;
  private gone = false;
  private paused = false;
  /** the peer sent </stream:stream> */
  private peerEnded = false;
  /** bytes read / written, for logs, metrics and the benchmark */
  bytesIn = 0;
  bytesOut = 0;

  private readonly onData = (chunk: Buffer) => this.receive(chunk);
  private readonly onDrain = () => {
    if (this.full) {
      this.full = false;
      this.events.onBackpressure?.(false);
    }
  };
  private readonly onCloseEvt = () => this.finish();
  private readonly onErrorEvt = (err: Error) => this.finish(err);

  constructor(
    socket: Socket,
    private readonly events: StreamEvents,
    limits: TokenizerLimits,
  ) {
    this.socket = socket;
    this.tokenizer = new Tokenizer(this, limits);
    this.attach(socket);
  }

  // the tokenizer's events: once we are closing, elements are ignored; only the peer's
  // </stream:stream> still matters
  onStreamStart(name: string, attrs: Record<string, string>): void {
    if (!this.closing) this.events.onStreamStart(name, attrs);
  }

  onElement(s: Stanza): void {
    if (!this.closing) this.events.onElement(s);
  }

  onStreamEnd(): void {
    this.peerEnded = true;
    if (this.closing) this.socket.end();
    else this.events.onStreamEnd();
  }

  onWhitespace(): void {
    if (!this.closing) this.events.onWhitespace?.();
  }

  get closed(): boolean {
    return this.closing || this.gone;
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('drain', this.onDrain);
    socket.on('close', this.onCloseEvt);
    socket.on('error', this.onErrorEvt);
  }

  private detach(socket: Socket): void {
    socket.off('data', this.onData);
    socket.off('drain', this.onDrain);
    socket.off('close', this.onCloseEvt);
    socket.off('error', this.onErrorEvt);
  }

  /**
   * Replace the socket (STARTTLS): `wrap` gets the plain socket and returns the TLS one. Bytes that
   * arrived before the switch are dropped and parsing restarts with a new stream (RFC 6120 §5.4.3.3).
   */
  upgrade(wrap: (plain: Socket) => Socket): Socket {
    this.flush();
    this.detach(this.socket);
    this.carry = null;
    this.tokenizer.reset(false);
    this.socket = wrap(this.socket);
    this.attach(this.socket);
    return this.socket;
  }

  /** Parse a new stream from the next byte on (after SASL success). */
  restart(): void {
    this.tokenizer.reset(true);
  }

  private receive(chunk: Buffer): void {
    if (this.gone) return;
    this.bytesIn += chunk.length;
    try {
      this.tokenizer.write(this.decode(chunk));
      if (!this.closing) this.events.onChunk?.(this.tokenizer.partial);
    } catch (err) {
      if (!(err instanceof StreamError)) throw err;
      if (this.closing) this.socket.end(); // garbage while we wait for its </stream:stream>: stop waiting
      else this.events.onViolation(err);
    }
  }

  /**
   * Check a chunk and hand it over as a latin1-held byte string. A UTF-8 sequence split across
   * chunks is carried to the next chunk; invalid UTF-8 and C0 control characters are rejected here,
   * so the tokenizer deals only in valid characters.
   */
  private decode(chunk: Buffer): string {
    let data = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = null;
    let cut = data.length;
    for (let k = 1; k <= 3 && k <= data.length; k++) {
      const b = data[data.length - k]!;
      if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back for the lead byte
      if (b >= 0xc0) {
        const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
        if (need > k) cut = data.length - k;
      }
      break;
    }
    if (cut < data.length) {
      this.carry = Buffer.from(data.subarray(cut));
      data = data.subarray(0, cut);
    }
    if (!isUtf8(data)) throw new StreamError('not-well-formed', 'invalid UTF-8');
    const bytes = data.toString('latin1');
    if (FORBIDDEN_CONTROL.test(bytes)) throw new StreamError('not-well-formed', 'control character');
    return bytes;
  }

  /** Queue bytes (latin1-held) for the next flush. */
  sendRaw(bytes: string): void {
    if (this.closed) return;
    this.out.push(bytes);
    this.schedule();
  }

  /** Queue text (a Unicode string) for the next flush. */
  sendText(text: string): void {
    this.sendRaw(textToBytes(text));
  }

  send(el: Element): void {
    this.sendText(el.toString());
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => this.flush());
  }

  /** Write everything queued as one socket write (one syscall, one TLS record where it fits). */
  flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.gone) return;
    const data = this.out.length === 1 ? this.out[0]! : this.out.join('');
    this.out = [];
    this.bytesOut += data.length; // latin1-held: one character per byte
    if (!this.socket.write(data, 'latin1') && !this.full) {
      this.full = true;
      this.events.onBackpressure?.(true);
    }
  }

  pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  resume(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /**
   * Send a stream error and close. `header` is our stream header if it was not sent yet (RFC 6120
   * §4.9.1.2: the error goes inside a stream). The socket is ended at once: after a stream error
   * nothing the peer says matters.
   */
  error(condition: StreamErrorCondition, text: string | undefined, header?: string): void {
    if (this.closed) return;
    if (header) this.sendRaw(header);
    const t = text ? `<text xmlns='${NS_STREAMS}'>${escapeText(text)}</text>` : '';
    this.sendText(`<stream:error><${condition} xmlns='${NS_STREAMS}'/>${t}</stream:error>`);
    this.close(false);
  }

  /**
   * Send </stream:stream>. With `wait` (the default) the TCP connection is ended when the peer answers
   * with its own </stream:stream> (RFC 6120 §4.4); without, at once. Either way the socket is destroyed
   * if it is still open after the grace period: end() alone never closes a socket whose peer does not
   * close its side (it need not even read: keepalives are answered by its kernel), and cannot send its
   * FIN through a TLS handshake the peer never finishes.
   */
  close(wait = true): void {
    if (this.closed) return;
    this.sendRaw('</stream:stream>');
    this.flush();
    this.closing = true;
    this.out = [];
    if (!wait || this.peerEnded) {
      this.tokenizer.close();
      this.socket.end();
    } else {
      this.resume(); // a paused socket would never read the answer we wait for
    }
    const timer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    this.socket.once('close', () => clearTimeout(timer));
  }

  /** Drop the socket now (the peer is gone or misbehaving beyond a polite close). */
  destroy(): void {
    this.closing = true;
    this.tokenizer.close();
    this.socket.destroy();
  }

  private finish(err?: Error): void {
    if (this.gone) return;
    this.gone = true;
    this.closing = true;
    this.tokenizer.close();
    this.out = [];
    if (err) this.socket.destroy();
    this.events.onClose(err);
  }
}

function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
