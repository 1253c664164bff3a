// Presence, subscriptions and roster (RFC 6121 through XEP-0207 §3, §4, §8) with other client stacks
// than @xmpp/client, through the proxy, on both backends: Debian's python3-slixmpp 1.8 with its own
// roster machinery (roster object, auto_authorize / auto_subscribe, the presence_* / changed_status /
// roster_update events) and python3-aioxmpp 0.13 (RosterClient, PresenceClient, PresenceServer).
// The Python side is test/clients/slixmpp_roster.py and test/clients/aioxmpp_roster.py: one process
// per scenario, all its clients in one event loop, every step an explicit wait for an event; each
// prints what its clients saw as JSON lines, asserted here.
//
// slixmpp quirks met on the way (none of them a proxy fault; see the scenarios):
// - auto_authorize=True approves with 'subscribed' and then sends its last presence to the new
//   subscriber as a *directed* presence; the proxy drops directed presence to users quietly
//   (README "Limits": RFC 6121 §4.6 is not mapped).
// - auto_authorize=False is not "manual": slixmpp denies every request itself ('unsubscribed', then a
//   directed unavailable presence). Manual approval is auto_authorize=None.
// - slixmpp's roster object never drops an item a later roster result lacks, and any presence from a
//   JID creates an item for it (the user's own JID too); it is current only through pushes.
//
// PROXY BUG (ejabberd only, intermittent): the assertions about Romeo staying removed fail in some
// runs (4 of 21 when this was written). In the mutual scenario B's slixmpp approves A and at once
// asks back (auto_subscribe), so B's proxy publishes 'sub:romeo@montague.lit' into Juliet's inbox
// while Juliet's proxy retracts 'auth:romeo@montague.lit' from it. ejabberd 23.01 runs both in mnesia sync_dirty (mod_pubsub
// publish_item / delete_item, no isolation): the owner's retract (node_flat:delete_item, owner branch)
// writes back Romeo's pubsub_state with the item list it read before the publish, so the new item
// 'sub:...' is in no state's item list. `items` still returns it, but every retract of it answers
// item-not-found. The proxy ignores that error (subscription.ts drainInbox: `.catch(() => undefined)`)
// and applies the undeletable request again at each of Juliet's logins (onBound reads the inbox): a
// no-op while she is subscribed both ways, but once she has removed Romeo it is a new request again,
// which slixmpp's auto_authorize approves. Reproduced on ejabberd without the proxy: romeo publishes
// item a-i to juliet's open-publish node, then juliet's retract of a-i and romeo's publish of b-i go
// out together: b-i is listed but cannot be retracted in 49 of 50 rounds (0 of 50 one after the other,
// and 0 of 50 on Prosody).
import t from 'tap';
import { startEjabberd } from './harness/ejabberd.js';
import { startProsody } from './harness/prosody.js';
import { startTestProxy } from './harness/proxy.js';
import type { Backend } from './harness/common.js';
import { completed, ensurePythonStacks, report, runPy, type PyRun } from './harness/python.js';

const PASSWORD = 'secret';

const JULIET = 'juliet@capulet.lit';
const ROMEO = 'romeo@montague.lit';
const BENVOLIO = 'benvolio@montague.lit';
const NURSE = 'nurse@capulet.lit';
const USERS: Array<[string, string, string]> = [JULIET, ROMEO, BENVOLIO, NURSE].map((j) => {
  const [u, d] = j.split('@') as [string, string];
  return [u, d, PASSWORD];
});

/** an item of a roster result or push, as the client library parsed it */
interface StanzaItem {
  subscription: string;
  ask: string | null;
  name: string | null;
  groups: string[];
  approved?: string | boolean | null;
}

/** slixmpp's RosterItem */
interface SlixItem {
  subscription: string;
  name: string;
  groups: string[];
  pending_out: boolean;
  pending_in: boolean;
  resources: Record<string, { show: string; status: string }>;
}

/** Run a slixmpp scenario; its roles are ROLE=JID. */
function slix(port: number, scenario: string, roles: Record<string, string>): Promise<PyRun> {
  return runPy('slixmpp_roster.py', PASSWORD, [scenario, '127.0.0.1', String(port), ...Object.entries(roles).flatMap(([r, j]) => ['--jid', `${r}=${j}`])]);
}

/** slixmpp's roster object (or the server's result) at a checkpoint */
function rosterAt<T>(r: PyRun, event: 'roster' | 'roster_result', client: string, at: string): Record<string, T> {
  return ((r.get(event, { client, at })?.items ?? {}) as Record<string, T>);
}

ensurePythonStacks();

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`python client stacks: presence, subscriptions and roster on ${kind}`, async (t) => {
    const backend: Backend = kind === 'ejabberd' ? await startEjabberd({ users: USERS }) : await startProsody({ users: USERS });
    t.teardown(() => backend.stop());
    const proxy = await startTestProxy(backend);
    t.teardown(() => proxy.stop());
    const port = proxy.port;
    const fullA = `${JULIET}/balcony`;
    const fullB = `${ROMEO}/orchard`;

    t.test('every user logs in once (their nodes are created at the first login)', async (t) => {
      const r = await slix(port, 'enrol', { A: JULIET, B: ROMEO, C: BENVOLIO, D: NURSE });
      completed(t, r);
      t.equal(r.all('login', { ok: true }).length, 4, 'four logins');
      report(t, r);
    });

    t.test('slixmpp: add with name and groups, subscribe, auto-approval both ways; status; a dropped client', async (t) => {
      const r = await slix(port, 'mutual', { A: JULIET, B: ROMEO });
      completed(t, r);
      t.equal(r.get('iq', { client: 'A', what: 'update_roster' })?.type, 'result', 'update_roster answered with a result');
      const added = r.get('roster_push', { client: 'A', jid: ROMEO, name: 'Romeo' });
      t.same(added?.groups, ['Lovers', 'Montagues'], 'the push of the new item carries both groups');
      t.ok(r.get('roster_push', { client: 'A', jid: ROMEO, ask: 'subscribe' }), 'A: ask=subscribe pushed');
      t.ok(r.get('presence_subscribe', { client: 'B', from: JULIET }), "B's slixmpp got A's request (and approved it itself)");
      t.ok(r.get('presence_subscribe', { client: 'A', from: ROMEO }), "A's slixmpp got B's request back (auto_subscribe)");
      t.ok(r.get('presence_subscribed', { client: 'A', from: ROMEO }), 'A got the approval');
      t.ok(r.get('presence_subscribed', { client: 'B', from: JULIET }), 'B got the approval');
      // both rosters, as slixmpp's roster object holds them
      const a = rosterAt<SlixItem>(r, 'roster', 'A', 'mutual')[ROMEO];
      t.equal(a?.subscription, 'both', "A's slixmpp roster: B both");
      t.equal(a?.name, 'Romeo', 'with its name');
      t.same(a?.groups, ['Lovers', 'Montagues'], 'and groups');
      t.equal(rosterAt<SlixItem>(r, 'roster', 'B', 'mutual')[JULIET]?.subscription, 'both', "B's slixmpp roster: A both");
      // presence with show and status, both ways
      const seenByA = r.get('changed_status', { client: 'A', from: fullB });
      t.same([seenByA?.show, seenByA?.status], ['chat', 'Under the window'], "A sees B's show and status");
      const seenByB = r.get('changed_status', { client: 'B', from: fullA });
      t.same([seenByB?.show, seenByB?.status], ['away', 'At the balcony'], "B sees A's show and status");
      t.same(a?.resources.orchard, { show: 'chat', status: 'Under the window' }, "slixmpp's roster item tracks B's resource");
      // the directed presence slixmpp's auto_authorize sends after approving is dropped quietly
      // (README Limits): no error reaches slixmpp
      for (const [who, to] of [['A', ROMEO], ['B', JULIET]] as const) {
        t.notOk(r.get('presence_error', { client: who, from: to }), `${who}: no presence error for slixmpp's directed presence`);
      }
      // B's new status
      const dnd = r.get('changed_status', { client: 'A', from: fullB, show: 'dnd' });
      t.equal(dnd?.status, 'Parting is such sweet sorrow', 'A sees B change to dnd with the new status');
      t.same(rosterAt<SlixItem>(r, 'roster', 'A', 'status')[ROMEO]?.resources.orchard, { show: 'dnd', status: 'Parting is such sweet sorrow' });
      // B's transport died
      t.ok(r.get('presence_unavailable', { client: 'A', from: fullB }), 'A gets presence_unavailable when B drops');
      t.same(rosterAt<SlixItem>(r, 'roster', 'A', 'dropped')[ROMEO]?.resources, {}, "no resource of B left in A's roster object");
      report(t, r);
    });

    t.test('slixmpp: the roster survives a re-login', async (t) => {
      const r = await slix(port, 'relogin', { A: JULIET });
      completed(t, r);
      const item = rosterAt<StanzaItem>(r, 'roster_result', 'A', 'relogin')[ROMEO];
      t.same(item && { subscription: item.subscription, name: item.name, groups: item.groups, ask: item.ask }, { subscription: 'both', name: 'Romeo', groups: ['Lovers', 'Montagues'], ask: null }, 'roster result after re-login');
      const obj = rosterAt<SlixItem>(r, 'roster', 'A', 'relogin')[ROMEO];
      t.same(obj && [obj.subscription, obj.name, obj.groups], ['both', 'Romeo', ['Lovers', 'Montagues']], "slixmpp's roster object agrees");
      report(t, r);
    });

    t.test('slixmpp: del_roster_item cancels both directions', async (t) => {
      const r = await slix(port, 'remove', { A: JULIET, B: ROMEO });
      completed(t, r);
      t.equal(rosterAt<SlixItem>(r, 'roster', 'A', 'before-remove')[ROMEO]?.subscription, 'both', 'both before');
      t.equal(r.get('iq', { client: 'A', what: 'del_roster_item' })?.type, 'result', 'the removal answered with a result');
      t.notOk(ROMEO in rosterAt(r, 'roster', 'A', 'after-remove-push'), "B gone from A's slixmpp roster after the push");
      t.notOk(ROMEO in rosterAt(r, 'roster_result', 'A', 'after-remove'), "B not in A's roster result");
      t.ok(r.get('presence_unsubscribe', { client: 'B', from: JULIET }), 'B got unsubscribe');
      t.ok(r.get('presence_unsubscribed', { client: 'B', from: JULIET }), 'B got unsubscribed');
      t.ok(r.get('presence_unavailable', { client: 'B', from: fullA }), "A's presence went unavailable for B");
      t.ok(r.get('presence_unavailable', { client: 'A', from: fullB }), "B's presence went unavailable for A");
      t.equal(rosterAt<StanzaItem>(r, 'roster_result', 'B', 'after-remove')[JULIET]?.subscription, 'none', "B's roster result: A with none");
      t.equal(rosterAt<SlixItem>(r, 'roster', 'B', 'after-remove')[JULIET]?.subscription, 'none', "B's slixmpp roster: none");
      report(t, r);
    });

    t.test('slixmpp: a request to an offline contact, approved by hand at its next login', async (t) => {
      const r = await slix(port, 'offline-request', { A: JULIET, C: BENVOLIO });
      completed(t, r);
      t.equal(rosterAt<SlixItem>(r, 'roster', 'A', 'requested')[BENVOLIO]?.pending_out, true, 'pending_out in slixmpp while C is offline');
      const req = r.get('presence_subscribe', { client: 'C', from: JULIET });
      t.ok(req, 'C gets presence_subscribe at its login');
      t.notOk(JULIET in rosterAt(r, 'roster_result', 'C', 'request-received'), 'a pending request is not a roster item');
      t.ok(r.get('roster_push', { client: 'C', jid: JULIET, subscription: 'from' }), "C's roster: from");
      t.ok(r.get('presence_subscribed', { client: 'A', from: BENVOLIO }), 'A got the approval');
      const item = rosterAt<StanzaItem>(r, 'roster_result', 'A', 'answered')[BENVOLIO];
      t.same(item && [item.subscription, item.ask], ['to', null], "A's roster result: to, no ask");
      const obj = rosterAt<SlixItem>(r, 'roster', 'A', 'answered')[BENVOLIO];
      t.same(obj && [obj.subscription, obj.pending_out], ['to', false], "A's slixmpp roster: to");
      // PROXY BUG on ejabberd (intermittent; see the header): a subscription
      // request from Romeo left over in Juliet's inbox is delivered again after she removed him
      t.notOk(r.get('presence_subscribe', { client: 'A', from: ROMEO }), 'no request from Romeo comes back after his removal');
      t.notOk(ROMEO in rosterAt(r, 'roster_result', 'A', 'answered'), 'Romeo stays removed');
      const p = r.get('changed_status', { client: 'A', from: `${BENVOLIO}/street` });
      t.same([p?.show, p?.status], ['chat', 'In the street'], "A sees C's presence");
      report(t, r);
    });

    t.test("slixmpp: auto_authorize=False denies an offline request by itself", async (t) => {
      const r = await slix(port, 'offline-deny', { A: JULIET, D: NURSE });
      completed(t, r);
      t.ok(r.get('presence_subscribe', { client: 'D', from: JULIET }), 'D gets presence_subscribe at its login');
      t.ok(r.get('presence_unsubscribed', { client: 'A', from: NURSE }), "A gets slixmpp's automatic unsubscribed");
      t.notOk(r.get('presence_error', { client: 'D', from: JULIET }), "slixmpp's directed unavailable after denying: dropped quietly, no error");
      const item = rosterAt<StanzaItem>(r, 'roster_result', 'A', 'answered')[NURSE];
      t.same(item && [item.subscription, item.ask], ['none', null], "A's roster result: none, no ask");
      t.notOk(ROMEO in rosterAt(r, 'roster_result', 'A', 'answered'), 'Romeo stays removed');
      report(t, r);
    });

    t.test('aioxmpp: RosterClient, PresenceClient and PresenceServer', async (t) => {
      // Juliet follows Benvolio since the slixmpp scenarios ('to'); the nurse denied her ('none')
      const r = await runPy('aioxmpp_roster.py', PASSWORD, ['contacts', '127.0.0.1', String(port), '--jid', `J=${JULIET}`, '--jid', `C=${BENVOLIO}`]);
      completed(t, r);
      const initial = (r.get('initial_roster', { client: 'J' })?.items ?? {}) as Record<string, StanzaItem>;
      t.same(initial[BENVOLIO] && [initial[BENVOLIO].subscription, initial[BENVOLIO].ask], ['to', null], 'initial roster: Benvolio, to');
      t.same(initial[NURSE] && [initial[NURSE].subscription, initial[NURSE].ask], ['none', null], 'initial roster: the nurse, none');
      t.notOk(ROMEO in initial, 'Romeo was removed');
      const fullC = `${BENVOLIO}/street`;
      const seen = r.get('available', { client: 'J', from: fullC });
      t.same([seen?.show, seen?.status], ['chat', 'In the street'], "PresenceClient.on_available: the contact's show and status");
      const changed = r.get('changed', { client: 'J', from: fullC, show: 'dnd' });
      t.equal(changed?.status, 'Fighting Tybalt', 'PresenceClient.on_changed');
      t.equal((r.get('entry_name_changed', { client: 'J', jid: BENVOLIO })?.item as StanzaItem | undefined)?.name, 'Benvolio', 'set_entry: name pushed');
      t.ok(r.get('entry_added_to_group', { client: 'J', jid: BENVOLIO, group: 'Montagues' }), 'set_entry: group pushed');
      t.ok(r.get('subscribe', { client: 'J', from: BENVOLIO }), 'RosterClient.on_subscribe');
      t.ok(r.get('subscribed', { client: 'C', from: JULIET }), 'RosterClient.on_subscribed after approve()');
      const j = rosterAt<StanzaItem>(r, 'roster', 'J', 'mutual')[BENVOLIO];
      t.same(j && [j.subscription, j.name, j.groups], ['both', 'Benvolio', ['Montagues']], "J's RosterClient: both, with name and group");
      t.equal(rosterAt<StanzaItem>(r, 'roster', 'C', 'mutual')[JULIET]?.subscription, 'both', "C's RosterClient: both");
      const back = r.get('available', { client: 'C', from: fullA });
      t.same([back?.show, back?.status], ['away', 'At the balcony'], "C's PresenceClient sees J once approved");
      t.ok(r.get('unavailable', { client: 'J', from: fullC }), 'PresenceClient.on_unavailable when C disconnects');
      report(t, r);
    });
  });
}
