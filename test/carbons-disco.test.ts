// XEP-0280 §2: the proxy adds the carbons feature to the server's disco#info answer. It remembers
// which of the client's requests it waits for; an error answer must end the wait like a result.
import t from 'tap';
import { carbonsRule } from '../src/rules/carbons.js';
import { parseElement } from '../src/stream/xml.js';
import { stanzaOf } from '../src/stream/stanza.js';
import { recordingContext } from './harness/recorder.js';

const JID = 'juliet@capulet.lit/balcony';
const NS_CARBONS = 'urn:xmpp:carbons:2';
const get = (id: string) => stanzaOf(parseElement(`<iq type='get' id='${id}' to='capulet.lit'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`));
const result = (id: string) => stanzaOf(parseElement(`<iq type='result' id='${id}' from='capulet.lit' to='${JID}'><query xmlns='http://jabber.org/protocol/disco#info'><feature var='urn:xmpp:ping'/></query></iq>`));
const error = (id: string) => stanzaOf(parseElement(`<iq type='error' id='${id}' from='capulet.lit' to='${JID}'><error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`));

t.test('a result gets the carbons feature added', async (t) => {
  const rec = recordingContext(JID);
  t.equal(carbonsRule.fromClient!(get('d1'), rec.ctx), false, 'the request goes to the backend');
  t.equal(carbonsRule.fromBackend!(result('d1'), rec.ctx), true, 'the answer is rewritten');
  t.equal(rec.toClient.length, 1);
  const vars = rec.toClient[0]!.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
  t.same(vars, ['urn:xmpp:ping', NS_CARBONS]);
  t.equal(rec.ctx.state.size, 0, 'nothing is left waiting');
});

t.test('an error answer passes through unchanged and ends the wait', async (t) => {
  const rec = recordingContext(JID);
  carbonsRule.fromClient!(get('d2'), rec.ctx);
  t.equal(carbonsRule.fromBackend!(error('d2'), rec.ctx), false, 'the error goes to the client as it came');
  t.equal(rec.toClient.length, 0);
  t.equal(rec.ctx.state.size, 0, 'the request is no longer waited for');
  t.equal(carbonsRule.fromBackend!(result('d2'), rec.ctx), false, 'a later result with that id is not taken for an answer');
  t.equal(rec.toClient.length, 0);
});

t.test('an answer to a request of the client not seen (other id) is left alone', async (t) => {
  const rec = recordingContext(JID);
  carbonsRule.fromClient!(get('d3'), rec.ctx);
  t.equal(carbonsRule.fromBackend!(error('other'), rec.ctx), false);
  t.equal(carbonsRule.fromBackend!(result('d3'), rec.ctx), true, 'the awaited request still gets its feature');
  t.equal(rec.ctx.state.size, 0);
});
