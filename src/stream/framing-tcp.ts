// XMPP over TCP (RFC 6120): the stream is one XML document over a byte stream. Bytes are checked
// (UTF-8, control characters) and tokenized; what we send is written as one socket write per flush
// (one syscall, one TLS record where it fits). STARTTLS swaps the socket for a TLS one.
import { isAscii, isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import { FORBIDDEN_CONTROL } from './chars.js';
import { beginInput, endInput } from './connection.js';
import { StreamError } from './errors.js';
import type { Framing, FramingSink } from './framing.js';
import { NS_STREAM, Tokenizer, type TokenizerLimits } from './tokenizer.js';
import type { Attrs } from './xml.js';

/** `<?xml?><stream:stream ...>` in jabber:client with these attributes (values escaped). */
export function streamHeader(attrs: Attrs): string {
  let s = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}'`;
  for (const [k, v] of Object.entries(attrs)) s += ` ${k}='${v.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;')}'`;
  return s + '>';
}

// The socket events go to module-level functions, which find their framing on the socket: four
// closures per socket (two sockets per session) would be kept by every idle session.
const FRAMING = Symbol('xep207.framing');
type Owned = Socket & { [FRAMING]?: TcpFraming };

function onData(this: Owned, chunk: Buffer): void {
  beginInput();
  try {
    this[FRAMING]?.receive(chunk);
  } finally {
    endInput();
  }
}
function onDrain(this: Owned): void {
  this[FRAMING]?.drained();
}
function onCloseEvt(this: Owned): void {
  this[FRAMING]?.socketClosed();
}
function onErrorEvt(this: Owned, err: Error): void {
  this.destroy();
  this[FRAMING]?.socketClosed(err);
}

export class TcpFraming implements Framing {
  readonly kind = 'tcp';
  readonly footer = '</stream:stream>';
  socket: Socket;
  bytesIn = 0;
  private sink!: FramingSink;
  private tokenizer!: Tokenizer;
  private carry: Buffer | null = null;
  /** the chunk decode() last handed over holds no byte >= 0x80 */
  private ascii = false;
  private closed = false;

  constructor(
    socket: Socket,
    private readonly limits: TokenizerLimits,
  ) {
    this.socket = socket;
  }

  attach(sink: FramingSink): void {
    this.sink = sink;
    this.tokenizer = new Tokenizer(sink, this.limits);
    this.listen(this.socket);
  }

  header(attrs: Attrs): string {
    return streamHeader(attrs);
  }

  private listen(socket: Owned): void {
    socket[FRAMING] = this;
    socket.on('data', onData);
    socket.on('drain', onDrain);
    socket.on('close', onCloseEvt);
    socket.on('error', onErrorEvt);
  }

  private unlisten(socket: Owned): void {
    socket.off('data', onData);
    socket.off('drain', onDrain);
    socket.off('close', onCloseEvt);
    socket.off('error', onErrorEvt);
    socket[FRAMING] = undefined;
  }

  /** the socket's events (the functions above) */
  drained(): void {
    this.sink.onBackpressure(false);
  }

  socketClosed(err?: Error): void {
    this.sink.onClose(err);
  }

  /** Bytes that arrived before the switch are dropped and parsing restarts (RFC 6120 §5.4.3.3). */
  upgrade(wrap: (plain: Socket) => Socket): Socket {
    this.unlisten(this.socket);
    this.carry = null;
    this.tokenizer.reset(false);
    this.socket = wrap(this.socket);
    this.listen(this.socket);
    return this.socket;
  }

  restart(): void {
    this.tokenizer.reset(true);
  }

  stopParsing(): void {
    this.tokenizer.close();
  }

  receive(chunk: Buffer): void {
    if (this.closed) return;
    this.bytesIn += chunk.length;
    try {
      const bytes = this.decode(chunk);
      this.tokenizer.write(bytes, this.ascii);
    } catch (err) {
      if (!(err instanceof StreamError)) throw err;
      this.sink.onViolation(err);
      return;
    }
    this.sink.onChunk(this.tokenizer.partial);
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
    // ASCII (most chunks: isAscii is a vector scan) is valid UTF-8 and needs no decoding downstream
    this.ascii = isAscii(data);
    if (!this.ascii && !isUtf8(data)) throw new StreamError('not-well-formed', 'invalid UTF-8');
    const bytes = data.toString('latin1');
    if (FORBIDDEN_CONTROL.test(bytes)) throw new StreamError('not-well-formed', 'control character');
    return bytes;
  }

  write(units: readonly string[]): boolean {
    if (this.closed) return true;
    return this.socket.write(units.length === 1 ? units[0]! : units.join(''), 'latin1');
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.closed = true;
    this.tokenizer.close();
    this.socket.destroy();
  }
}
