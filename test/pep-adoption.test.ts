// When the proxy adopts PEP nodes made before it was in front of the backend (pep-access.ts
// `adopted`): not at the first login (five reads of well-known nodes per new account), but before
// the first grant or the registry's first write, once per session. Through the rule code with a
// scripted backend (test/harness/recorder.ts); pep.test.ts shows the adoption on both backends.
import t from 'tap';
import type { Element } from 'ltx';
import { defaultRules } from '../src/rules/index.js';
import { NODE_INBOX, NODE_PRESENCE, NODE_ROSTER, accountOf } from '../src/rules/account.js';
import { NODE_PEP, grantNodes } from '../src/rules/pep-access.js';
import { StanzaError } from '../src/xmpp/stanza-error.js';
import { bind, recordingContext } from './harness/recorder.js';

const NICK = 'http://jabber.org/protocol/nick';
const node = (iq: Element) => iq.getChild('pubsub')?.getChild('items')?.attrs.node as string | undefined;
const tick = () => new Promise((r) => setImmediate(r));

/** A first login: none of the proxy's nodes exists; `nick` says whether the user has a nickname node. */
async function firstLogin(nick: boolean, identity = 'Prosody') {
  const missing = new Set([NODE_PRESENCE, NODE_ROSTER, NODE_INBOX, NODE_PEP]);
  const rec = recordingContext('tybalt@capulet.lit/first', {
    identity,
    answer: (iq) => {
      const n = node(iq);
      if (n && !iq.attrs.to && missing.has(n)) return new StanzaError('item-not-found');
      if (iq.getChild('pubsub')?.getChild('create')) missing.delete(iq.getChild('pubsub')!.getChild('create')!.attrs.node as string);
      return undefined;
    },
  });
  if (nick) rec.nodes.set(NICK, []); // the node exists (its items do not matter here)
  const rules = defaultRules();
  await bind(rules, rec);
  for (let i = 0; i < 20; i++) await tick(); // the background work of the login (reconcile)
  return { rec, account: accountOf(rec.ctx) };
}

const isListing = (iq: Element) => iq.getChild('query')?.attrs.xmlns === 'http://jabber.org/protocol/disco#items';

/** The requests one grant of the session's account made. */
async function grantAsks(rec: { requests: Element[] }, account: Parameters<typeof grantNodes>[0], contact: string): Promise<Element[]> {
  const before = rec.requests.length;
  await grantNodes(account, contact);
  return rec.requests.slice(before);
}

const ownAffiliations = (requests: Element[]) => requests.filter((iq) => !iq.attrs.to && iq.getChild('pubsub')?.attrs.xmlns === 'http://jabber.org/protocol/pubsub' && iq.getChild('pubsub')?.getChild('affiliations'));
const wellKnownReads = (requests: Element[]) => requests.filter((iq) => iq.getChild('pubsub')?.getChild('items')?.attrs.max_items === '1' && !iq.attrs.to && node(iq) !== NODE_PEP);

t.test('the first login reads none of the well-known PEP nodes', async (t) => {
  const { rec } = await firstLogin(true);
  t.same(wellKnownReads(rec.requests).map(node), [], 'no last-item reads at the login');
  t.same(ownAffiliations(rec.requests), [], 'no affiliations request');
  t.notOk(rec.requests.some(isListing), 'no listing of the user\'s nodes');
});

t.test('the first grant adopts first, once per session', async (t) => {
  const { rec, account } = await firstLogin(true);
  const asked = await grantAsks(rec, account, 'romeo@montague.lit');
  t.equal(wellKnownReads(asked).length, 5, 'the five well-known nodes are read by their last item');
  t.ok(asked.findIndex(isListing) > 0, 'a user with a nickname node gets its nodes listed');
  t.same(wellKnownReads(await grantAsks(rec, account, 'mercutio@montague.lit')).map(node), [], 'a second grant in the session does not adopt again');
});

t.test('a user without well-known nodes is not listed at its first grant', async (t) => {
  const { rec, account } = await firstLogin(false);
  const asked = await grantAsks(rec, account, 'romeo@montague.lit');
  t.equal(wellKnownReads(asked).length, 5, 'the five reads');
  t.notOk(asked.some(isListing), 'no listing');
});

t.test('on ejabberd the first grant asks the user\'s own affiliations instead, once per session', async (t) => {
  const { rec, account } = await firstLogin(true, 'ejabberd');
  t.same(ownAffiliations(rec.requests), [], 'nothing at the login');
  const asked = await grantAsks(rec, account, 'romeo@montague.lit');
  t.equal(ownAffiliations(asked).length, 1, 'one affiliations request names the user\'s nodes');
  t.same(wellKnownReads(asked), [], 'no reads of well-known nodes');
  t.same(ownAffiliations(await grantAsks(rec, account, 'mercutio@montague.lit')), [], 'not again in the session');
});
