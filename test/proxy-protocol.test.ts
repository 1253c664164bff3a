// The PROXY protocol parser (issue 9 point 3): v1 lines and v2 binary headers, each address family,
// LOCAL/UNKNOWN, incomplete input, and what is refused.
import t from 'tap';
import { parseProxyHeader, ProxyHeaderError } from '../src/stream/proxy-protocol.js';
import { inet4, v2 } from './harness/proxy-header.js';


t.test('v1', async (t) => {
  const line = 'PROXY TCP4 192.0.2.7 198.51.100.1 40000 5222\r\n';
  t.same(parseProxyHeader(Buffer.from(line + '<?xml')), { kind: 'header', version: 1, length: line.length, source: { address: '192.0.2.7', port: 40000 } });
  const six = 'PROXY TCP6 2001:db8::7 2001:db8::1 40001 5222\r\n';
  t.same(parseProxyHeader(Buffer.from(six)), { kind: 'header', version: 1, length: six.length, source: { address: '2001:db8::7', port: 40001 } });
  t.same(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { kind: 'header', version: 1, length: 15 }, 'UNKNOWN: no address');
  for (const part of ['P', 'PROXY', 'PROXY TCP4 192.0.2.7 198.5']) t.same(parseProxyHeader(Buffer.from(part)), { kind: 'incomplete' }, `incomplete: '${part}'`);
  for (const bad of [
    'PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n',
    'PROXY TCP4 2001:db8::7 198.51.100.1 40000 5222\r\n',
    'PROXY TCP4 192.0.2.7 198.51.100.1 99999 5222\r\n',
    'PROXY TCP5 192.0.2.7 198.51.100.1 1 2\r\n',
    'PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n',
    'PROXY ' + 'x'.repeat(120),
  ]) t.throws(() => parseProxyHeader(Buffer.from(bad)), ProxyHeaderError, JSON.stringify(bad.slice(0, 40)));
});

t.test('v2', async (t) => {
  const h = v2(1, 0x11, inet4([203, 0, 113, 9], [10, 0, 0, 1], 51000, 5222));
  t.same(parseProxyHeader(Buffer.concat([h, Buffer.from('<?xml')])), { kind: 'header', version: 2, length: 28, source: { address: '203.0.113.9', port: 51000 } });
  const a6 = Buffer.alloc(36);
  a6.writeUInt16BE(0x2001, 0);
  a6.writeUInt16BE(0x0db8, 2);
  a6.writeUInt16BE(0x0007, 14);
  a6.writeUInt16BE(443, 32);
  t.same(parseProxyHeader(v2(1, 0x21, a6)), { kind: 'header', version: 2, length: 52, source: { address: '2001:db8::7', port: 443 } }, 'IPv6, compressed text form');
  const tlv = Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32]); // an ALPN TLV: skipped
  const withTlv = v2(1, 0x11, Buffer.concat([inet4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), tlv]));
  t.equal((parseProxyHeader(withTlv) as { length: number }).length, 16 + 17, 'TLVs are part of the header');
  t.same(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0))), { kind: 'header', version: 2, length: 16 }, 'LOCAL: no address');
  t.same(parseProxyHeader(h.subarray(0, 10)), { kind: 'incomplete' });
  t.same(parseProxyHeader(h.subarray(0, 20)), { kind: 'incomplete' });
  const v3 = Buffer.from(h);
  v3[12] = 0x31;
  t.throws(() => parseProxyHeader(v3), ProxyHeaderError, 'version 3');
  t.throws(() => parseProxyHeader(v2(1, 0x11, Buffer.alloc(4))), ProxyHeaderError, 'IPv4 block too short');
  const huge = Buffer.from(h);
  huge.writeUInt16BE(60000, 14);
  t.throws(() => parseProxyHeader(huge), ProxyHeaderError, 'a header bigger than taken');
});

t.test('anything else is refused at once', async (t) => {
  for (const bad of ["<?xml version='1.0'?>", '\x16\x03\x01', 'GET / HTTP/1.1\r\n']) t.throws(() => parseProxyHeader(Buffer.from(bad, 'latin1')), ProxyHeaderError, JSON.stringify(bad));
});
