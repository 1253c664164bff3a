// The PROXY protocol (HAProxy, versions 1 and 2): a TCP load balancer in front of the proxy prefixes
// each connection with the client's real address. With --proxy-protocol every connection on the TCP
// listeners must start with such a header; without one it is refused (a client reaching the proxy
// directly could otherwise claim any address). The header comes before anything else, TLS included.
//
// Hand-written rather than a dependency: the format is two short, fixed layouts, and the npm
// packages for it are small and little kept.
import { isIPv4, isIPv6 } from 'node:net';
import type { Socket } from 'node:net';

export interface ProxyAddress {
  address: string;
  port: number;
}

export type ProxyParse =
  | { kind: 'incomplete' }
  /** `length` bytes of header; `source` absent for LOCAL (v2) and UNKNOWN (v1): a health check or the balancer itself */
  | { kind: 'header'; version: 1 | 2; length: number; source?: ProxyAddress };

export class ProxyHeaderError extends Error {
  override name = 'ProxyHeaderError';
}

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V1_MAX = 107; // the longest v1 line, CRLF included
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** the longest v2 header taken (addresses plus TLVs such as a balancer's TLS details) */
const V2_MAX = 16 + 2048;

/** Parse the start of a connection's bytes. Throws ProxyHeaderError when it is no valid header. */
export function parseProxyHeader(buf: Buffer): ProxyParse {
  if (startsWithPrefixOf(buf, V2_SIGNATURE)) {
    return buf.length < 16 ? { kind: 'incomplete' } : parseV2(buf);
  }
  if (startsWithPrefixOf(buf, V1_PREFIX)) {
    return buf.length < V1_PREFIX.length ? { kind: 'incomplete' } : parseV1(buf);
  }
  throw new ProxyHeaderError('no PROXY protocol header');
}

/** `buf` begins with `sig`, or is a beginning of it */
function startsWithPrefixOf(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  return buf.subarray(0, n).equals(sig.subarray(0, n));
}

function parseV1(buf: Buffer): ProxyParse {
  const lf = buf.indexOf(0x0a);
  if (lf === -1) {
    if (buf.length >= V1_MAX) throw new ProxyHeaderError('PROXY v1 line too long');
    return { kind: 'incomplete' };
  }
  if (lf + 1 > V1_MAX || buf[lf - 1] !== 0x0d) throw new ProxyHeaderError('PROXY v1 line not ended by CRLF within 107 bytes');
  const line = buf.toString('latin1', 0, lf - 1);
  const parts = line.split(' ');
  if (parts[1] === 'UNKNOWN') return { kind: 'header', version: 1, length: lf + 1 };
  if (parts.length !== 6) throw new ProxyHeaderError('malformed PROXY v1 line');
  const [, proto, src, , sport] = parts as [string, string, string, string, string, string];
  if (proto === 'TCP4' ? !isIPv4(src) : proto === 'TCP6' ? !isIPv6(src) : true) throw new ProxyHeaderError(`bad PROXY v1 address '${src}' for ${proto}`);
  return { kind: 'header', version: 1, length: lf + 1, source: { address: src, port: port(sport) } };
}

function port(s: string): number {
  if (!/^[0-9]{1,5}$/.test(s) || Number(s) > 65535) throw new ProxyHeaderError(`bad PROXY port '${s}'`);
  return Number(s);
}

function parseV2(buf: Buffer): ProxyParse {
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw new ProxyHeaderError(`PROXY v2 header with version ${verCmd >> 4}`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) throw new ProxyHeaderError(`PROXY v2 header with command ${cmd}`);
  const len = buf.readUInt16BE(14);
  if (16 + len > V2_MAX) throw new ProxyHeaderError(`PROXY v2 header of ${16 + len} bytes`);
  if (buf.length < 16 + len) return { kind: 'incomplete' };
  const length = 16 + len;
  if (cmd === 0) return { kind: 'header', version: 2, length }; // LOCAL: the balancer's own connection
  const family = buf[13]! >> 4;
  if (family === 1) {
    if (len < 12) throw new ProxyHeaderError('PROXY v2 IPv4 addresses truncated');
    return { kind: 'header', version: 2, length, source: { address: [...buf.subarray(16, 20)].join('.'), port: buf.readUInt16BE(24) } };
  }
  if (family === 2) {
    if (len < 36) throw new ProxyHeaderError('PROXY v2 IPv6 addresses truncated');
    const groups: string[] = [];
    for (let k = 0; k < 8; k++) groups.push(buf.readUInt16BE(16 + 2 * k).toString(16));
    return { kind: 'header', version: 2, length, source: { address: compressIPv6(groups), port: buf.readUInt16BE(48) } };
  }
  return { kind: 'header', version: 2, length }; // UNSPEC or a UNIX socket: no address to report
}

/** RFC 5952 text form: the longest run of two or more zero groups becomes '::' */
function compressIPv6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best === -1) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/**
 * Read the header off a fresh socket. Resolves with the client's address (undefined for LOCAL /
 * UNKNOWN) once the header is complete, the bytes after it put back into the socket, which is left
 * paused for its next reader. Rejects (ProxyHeaderError) on a bad or missing header, a close, or
 * no complete header within `timeoutMs`.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyAddress | undefined> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (err: Error | undefined, source?: ProxyAddress) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      if (err) reject(err);
      else resolve(source);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let parsed: ProxyParse;
      try {
        parsed = parseProxyHeader(buf);
      } catch (err) {
        done(err as Error);
        return;
      }
      if (parsed.kind === 'incomplete') return;
      socket.pause();
      if (buf.length > parsed.length) socket.unshift(buf.subarray(parsed.length));
      done(undefined, parsed.source);
    };
    const onClose = () => done(new ProxyHeaderError('closed before a PROXY protocol header'));
    const timer = setTimeout(() => done(new ProxyHeaderError(`no PROXY protocol header within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onClose);
  });
}
