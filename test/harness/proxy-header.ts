// PROXY protocol headers as a load balancer sends them (v1 text line, v2 binary), for the tests.
const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** a v2 header: command 1 (PROXY) or 0 (LOCAL), family byte, address block */
export function v2(cmd: number, fam: number, addresses: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(addresses.length);
  return Buffer.concat([SIG, Buffer.from([0x20 | cmd, fam]), len, addresses]);
}

export function inet4(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from(dst).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}

/** v1 line for a TCP4 client */
export function proxyV1(src: string, sport: number): Buffer {
  return Buffer.from(`PROXY TCP4 ${src} 10.0.0.1 ${sport} 5222\r\n`, 'latin1');
}

/** v2 header for a TCP4 client */
export function proxyV2(src: string, sport: number): Buffer {
  return v2(1, 0x11, inet4(src.split('.').map(Number), [10, 0, 0, 1], sport, 5222));
}
