// Scenarios every backend's suite runs the same way.
import type { Test } from 'tap';
import { canonicalXml } from '../../src/stream/xml.js';
import { connect, waitFor, xml } from './xmpp.js';

/**
 * Juliet (password 'secret') sends Romeo (password 's3cret') a chat message with an extension
 * payload; it arrives as sent, `from` stamped by the backend. Payloads are compared in canonical form
 * (Prosody re-serializes attributes in its own order).
 */
export async function messagePassesUnchanged(t: Test, port: number): Promise<void> {
  const juliet = await connect({ port, domain: 'capulet.lit', username: 'juliet', password: 'secret', resource: 'balcony' });
  const romeo = await connect({ port, domain: 'montague.lit', username: 'romeo', password: 's3cret', resource: 'orchard' });
  t.teardown(() => Promise.all([juliet.stop(), romeo.stop()]));
  const msg = xml(
    'message',
    { to: 'romeo@montague.lit/orchard', type: 'chat', id: 'm-1' },
    xml('body', {}, 'Wherefore art thou, Romeo? <&> ☾'),
    xml('thread', {}, 'th-1'),
    xml('x', { xmlns: 'urn:example:custom', a: "q'uo\"te" }, xml('deep', {}, xml('er', {}, 'text'))),
  );
  await juliet.send(msg);
  const got = await waitFor(romeo, (s) => s.name === 'message' && s.attrs.id === 'm-1');
  t.equal(got.attrs.from, 'juliet@capulet.lit/balcony', 'from stamped by the backend');
  t.equal(got.attrs.to, 'romeo@montague.lit/orchard');
  t.equal(got.attrs.type, 'chat');
  t.equal(got.getChildText('body'), 'Wherefore art thou, Romeo? <&> ☾');
  t.equal(got.getChildText('thread'), 'th-1');
  t.equal(canonicalXml(got.getChild('x', 'urn:example:custom')!), canonicalXml(msg.getChild('x')!), 'extension payload unchanged');
}
