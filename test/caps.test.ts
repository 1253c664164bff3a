// XEP-0115 as the PEP rule uses it: the verification string (§5.1, checked against the XEP's own
// examples §5.2 and §5.3), the +notify nodes of a disco#info answer, and the cache that trusts only
// answers that verify.
import t from 'tap';
import jidLib from '@xmpp/jid';
import { CapsCache, capsVerOf, notifyNodes } from '../src/rules/caps.js';
import { parseElement, xml } from '../src/stream/xml.js';
import { silentLogger } from '../src/log.js';
import type { RuleContext } from '../src/rules/types.js';
import type { Element } from 'ltx';

const SIMPLE = parseElement(`<query xmlns='http://jabber.org/protocol/disco#info'>
  <identity category='client' name='Exodus 0.9.1' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
</query>`);

const COMPLEX = parseElement(`<query xmlns='http://jabber.org/protocol/disco#info'>
  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
  <identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
  <x xmlns='jabber:x:data' type='result'>
    <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
    <field var='ip_version'><value>ipv4</value><value>ipv6</value></field>
    <field var='os'><value>Mac</value></field>
    <field var='os_version'><value>10.5.1</value></field>
    <field var='software'><value>Psi</value></field>
    <field var='software_version'><value>0.11</value></field>
  </x>
</query>`);

t.test('verification strings of XEP-0115 §5.2 and §5.3', async (t) => {
  t.equal(capsVerOf(SIMPLE, 'sha-1'), 'QgayPKawpkPSDYmwT/WM94uAlu0=', 'the simple example');
  t.equal(capsVerOf(COMPLEX, 'sha-1'), 'q07IKJEyjvHSyhy//CH0CxmKi8w=', 'the complex example (two identities, a form)');
  t.equal(capsVerOf(SIMPLE, 'md2'), undefined, 'an unknown hash function verifies nothing');
});

t.test('+notify features name the nodes', async (t) => {
  const q = xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }, ...['urn:xmpp:avatar:metadata+notify', 'urn:xmpp:avatar:metadata', '+notify', 'http://jabber.org/protocol/nick+notify'].map((v) => xml('feature', { var: v })));
  t.same([...notifyNodes(q)].sort(), ['http://jabber.org/protocol/nick', 'urn:xmpp:avatar:metadata']);
});

/** A context whose client answers the caps query with `answer`, counting the queries. */
function clientAnswering(answer: Element): { ctx: RuleContext; asked: () => number } {
  let n = 0;
  const jid = jidLib.parse('juliet@capulet.lit/balcony');
  const ctx = {
    jid, bare: 'juliet@capulet.lit', domain: 'capulet.lit', sessionId: 't', log: silentLogger, state: new Map(),
    toClient: () => undefined, toBackend: () => undefined, endSession: () => undefined,
    request: () => Promise.reject(new Error('not used')),
    requestClient: () => {
      n++;
      return Promise.resolve(xml('iq', { type: 'result' }, answer));
    },
  } satisfies RuleContext;
  return { ctx, asked: () => n };
}

t.test('the cache keeps verified answers only', async (t) => {
  const features = ['urn:xmpp:avatar:metadata+notify', 'http://jabber.org/protocol/disco#info'];
  const answer = xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }, xml('identity', { category: 'client', type: 'pc', name: 'x' }), ...features.map((v) => xml('feature', { var: v })));
  const ver = capsVerOf(answer, 'sha-1')!;
  const cache = new CapsCache();
  const good = clientAnswering(answer);
  const c = xml('c', { xmlns: 'http://jabber.org/protocol/caps', hash: 'sha-1', node: 'https://example.org', ver });
  t.same([...(await cache.interests(good.ctx, c))], ['urn:xmpp:avatar:metadata']);
  await cache.interests(good.ctx, c);
  t.equal(good.asked(), 1, 'a verified ver string is asked once');
  // a client claiming somebody else's ver string with other features: used for itself, never cached
  const liar = clientAnswering(xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }, xml('feature', { var: 'urn:example:other+notify' })));
  const forged = xml('c', { xmlns: 'http://jabber.org/protocol/caps', hash: 'sha-1', node: 'https://example.org', ver: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' });
  t.same([...(await cache.interests(liar.ctx, forged))], ['urn:example:other']);
  await cache.interests(liar.ctx, forged);
  t.equal(liar.asked(), 2, 'an answer that does not verify is asked again');
  t.same([...(await cache.interests(good.ctx, undefined))], [], 'no caps, no interests');
});
