// The account setup's retry policy (src/rules/retry.ts) through the account rule, with a recording
// context whose backend fails some requests: transient errors are retried, the bound is kept, and
// a setup that fails for good ends the session with a stream error. first-logins.test.ts is the
// same against real backends.
import t from 'tap';
import type { Element } from 'ltx';
import { accountOf, accountRule, NODE_INBOX, NODE_PRESENCE, NODE_ROSTER } from '../src/rules/account.js';
import { NODE_DELIVERED } from '../src/rules/chat-nodes.js';
import { NODE_PEP } from '../src/rules/pep-access.js';
import { newEntry } from '../src/rules/roster-item.js';
import { isTransient, SETUP_RETRY, type RetryPolicy } from '../src/rules/retry.js';
import { StanzaError } from '../src/xmpp/stanza-error.js';
import { xml } from '../src/stream/xml.js';
import { recordingContext, type Answer } from './harness/recorder.js';

/** the real policy's shape, with delays short enough for a unit test */
const FAST: RetryPolicy = { ...SETUP_RETRY, baseMs: 1, capMs: 4, budgetMs: 2000 };

const createOf = (iq: Element) => iq.getChild('pubsub')?.getChild('create')?.attrs.node as string | undefined;
const isDiscoInfo = (iq: Element) => iq.getChild('query')?.attrs.xmlns === 'http://jabber.org/protocol/disco#info';

/** A backend without the user's nodes: a read answers item-not-found until the node is created. */
function noNodesUntilMade(): (iq: Element) => Answer {
  const made = new Set<string>();
  return (iq) => {
    const created = createOf(iq);
    if (created) made.add(created);
    const items = iq.getChild('pubsub')?.getChild('items')?.attrs.node as string | undefined;
    return items && !made.has(items) ? new StanzaError('item-not-found') : undefined;
  };
}

/** Log in juliet with the account rule; `fail` may answer a request with an error instead. */
async function setup(fail: (iq: Element) => Answer, policy = FAST) {
  // a first login: no node exists (items: item-not-found) until created, so every node is created
  const noNodes = noNodesUntilMade();
  const rec = recordingContext('juliet@capulet.lit/balcony', { answer: (iq) => fail(iq) ?? noNodes(iq) });
  const rule = accountRule('auto', { change: [], available: [] }, policy);
  await rule.onBound!(rec.ctx);
  const creates = (node: string) => rec.requests.filter((iq) => createOf(iq) === node).length;
  return { rec, account: accountOf(rec.ctx), creates };
}

/** Fail the creation of the presence node `n` times with `err`. */
function failCreate(n: number, err: () => StanzaError) {
  let left = n;
  return (iq: Element): Answer => (createOf(iq) === NODE_PRESENCE && left-- > 0 ? err() : undefined);
}

const dbFailure = () => new StanzaError('internal-server-error', 'Database failure');

t.test('which errors are transient', async (t) => {
  for (const c of ['internal-server-error', 'remote-server-timeout', 'resource-constraint']) t.ok(isTransient(new StanzaError(c)), c);
  t.ok(isTransient(new StanzaError('undefined-condition', undefined, 'wait')), 'any error of type wait');
  for (const c of ['forbidden', 'not-allowed', 'item-not-found', 'conflict', 'remote-server-not-found', 'bad-request']) t.notOk(isTransient(new StanzaError(c)), c);
  t.notOk(isTransient(new Error('a bug')), 'not a stanza error');
});

t.test('the policy: the longest retries of one step fit the budget', async (t) => {
  let sum = 0;
  for (let n = 0; n < SETUP_RETRY.attempts - 1; n++) sum += Math.min(SETUP_RETRY.capMs, SETUP_RETRY.baseMs * 2 ** n);
  t.ok(sum < SETUP_RETRY.budgetMs, `${sum} ms of waits at most, budget ${SETUP_RETRY.budgetMs} ms`);
  t.ok(SETUP_RETRY.budgetMs < 20_000, 'the client waits less than 20 s');
});

t.test('a first login makes the presence node and the inbox (where the profile does not make it lazily); the roster node only before its first write, once', async (t) => {
  const { rec, account, creates } = await setup(() => undefined);
  const nodes = [NODE_PRESENCE, NODE_INBOX, NODE_ROSTER, NODE_DELIVERED, NODE_PEP];
  t.equal(account.profile.name, 'ejabberd', "the recorder's identity");
  const inbox = account.profile.lazyInbox ? 0 : 1;
  t.same(nodes.map(creates), [1, inbox, 0, 0, 0], `${1 + inbox} creation(s) at login`);
  t.ok(account.lacks(NODE_INBOX) === account.profile.lazyInbox, 'the inbox known to be missing where it is made lazily');
  t.ok(account.rosterLoaded, 'the roster: empty');
  await Promise.all([account.save({ ...newEntry('romeo@montague.lit'), listed: true }), account.save({ ...newEntry('nurse@capulet.lit'), listed: true })]);
  t.same(nodes.map(creates), [1, inbox, 1, 0, 0], 'the roster node made for the first writes, once');
  const roster = rec.requests.map((iq, i) => [i, createOf(iq) ?? iq.getChild('pubsub')?.getChild('publish')?.attrs.node] as const).filter(([, n]) => n === NODE_ROSTER);
  t.same(roster.map(([i]) => createOf(rec.requests[i]!) !== undefined), [true, false, false], 'made before the publishes (ejabberd would auto-create it with max_items 1)');
  await account.save({ ...newEntry('tybalt@capulet.lit'), listed: true });
  t.equal(creates(NODE_ROSTER), 1, 'not again');
});

t.test("the login's reads: the presence node alone for an account the proxy has not seen, all at once after", async (t) => {
  const readsOf = (iqs: Element[]) => iqs.map((iq) => iq.getChild('pubsub')?.getChild('items')?.attrs.node as string | undefined).filter((n) => n !== undefined);
  const own = [NODE_PRESENCE, NODE_ROSTER, NODE_INBOX, NODE_PEP];
  // one proxy (one rule table): juliet's first login finds no presence node
  const noNodes = noNodesUntilMade();
  const rule = accountRule('ejabberd', { change: [], available: [] }, FAST);
  const first = recordingContext('juliet@capulet.lit/balcony', { answer: noNodes });
  await rule.onBound!(first.ctx);
  t.same(readsOf(first.requests), [NODE_PRESENCE], 'a first login: the presence node read, nothing else');
  t.same(first.requests.map(createOf).filter(Boolean), [NODE_PRESENCE], 'then made');
  t.ok(accountOf(first.ctx).rosterLoaded, 'the roster: empty');
  t.ok(accountOf(first.ctx).lacks(NODE_PEP) && accountOf(first.ctx).lacks(NODE_ROSTER), 'the lazy nodes known to be missing');
  // the next login of juliet through the same proxy: the four reads at once
  const second = recordingContext('juliet@capulet.lit/orchard', { answer: noNodes });
  await rule.onBound!(second.ctx);
  t.same([...readsOf(second.requests)].sort(), [...own].sort(), 'a later login reads all four');
  // another proxy (a restart, a second instance) and an account with its nodes: the presence
  // node's read first, then the others, the roster loaded from its read
  const other = accountRule('ejabberd', { change: [], available: [] }, FAST);
  const order: string[] = [];
  const third = recordingContext('juliet@capulet.lit/garden', {
    answer: (iq) => {
      const node = iq.getChild('pubsub')?.getChild('items')?.attrs.node as string | undefined;
      if (node) order.push(node);
      return undefined; // every node exists (the recorder's own, and empty ones)
    },
  });
  third.nodes.set(NODE_PEP, []);
  third.nodes.set(NODE_ROSTER, [xml('item', { id: 'romeo@montague.lit' })]);
  await other.onBound!(third.ctx);
  t.equal(order[0], NODE_PRESENCE, 'the presence node read first');
  t.same([...order].sort(), [...own].sort(), 'then the others');
  t.ok(accountOf(third.ctx).rosterLoaded, 'the roster read');
  t.same(third.requests.map(createOf).filter(Boolean), [], 'nothing made');
});

t.test('a transient error is retried until the setup succeeds', async (t) => {
  const { rec, account, creates } = await setup(failCreate(3, dbFailure));
  t.equal(creates(NODE_PRESENCE), 4, 'three failures, then success');
  t.ok(account.rosterLoaded, 'the roster was loaded');
  t.same(rec.ended, [], 'the session goes on');
});

t.test('a transient error that never passes: the session ends after the last attempt', async (t) => {
  const { rec, account, creates } = await setup(failCreate(100, dbFailure));
  t.equal(creates(NODE_PRESENCE), FAST.attempts, `${FAST.attempts} attempts`);
  t.notOk(account.rosterLoaded);
  t.same(rec.ended, [{ condition: 'internal-server-error', text: 'account setup failed: internal-server-error: Database failure' }], 'one stream error');
});

t.test('a permanent error is not retried', async (t) => {
  const { rec, creates } = await setup(failCreate(100, () => new StanzaError('forbidden')));
  t.equal(creates(NODE_PRESENCE), 1, 'one attempt');
  t.equal(rec.ended.length, 1, 'the session is ended');
  t.match(rec.ended[0], { condition: 'internal-server-error', text: /^account setup failed: forbidden/ });
});

t.test('a backend that never answers: the setup ends within its budget', async (t) => {
  const rec = recordingContext('juliet@capulet.lit/balcony');
  rec.ctx = { ...rec.ctx, request: () => new Promise<Element>(() => undefined) };
  const started = Date.now();
  await accountRule('ejabberd', { change: [], available: [] }, { ...FAST, budgetMs: 200 }).onBound!(rec.ctx);
  const took = Date.now() - started;
  t.ok(took >= 190 && took < 1000, `ended after ${took} ms`);
  t.match(rec.ended, [{ condition: 'internal-server-error', text: /remote-server-timeout/ }]);
});

t.test('a transient error of the profile detection is retried, not taken for a generic backend', async (t) => {
  let left = 2;
  const { rec, account } = await setup((iq) => {
    if (!isDiscoInfo(iq)) return undefined;
    if (left-- > 0) return new StanzaError('resource-constraint');
    return xml('iq', { type: 'result' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }, xml('identity', { category: 'server', type: 'im', name: 'Prosody' })));
  });
  t.equal(account.profile.name, 'prosody');
  t.equal(rec.requests.filter(isDiscoInfo).length, 3);
  t.same(rec.ended, []);
});
