// §6 with client stacks the proxy's code does not share: slixmpp's own carbons (xep_0280) and delay
// (xep_0203) plugins (test/clients/slixmpp_chat.py), and aioxmpp 0.13's CarbonsClient with its IM
// framework (IMDispatcher, p2p conversations; test/clients/aioxmpp_chat.py), through the proxy, on
// both backends (Prosody with the service account).
import t from 'tap';
import { startEjabberd } from './harness/ejabberd.js';
import { startProsody } from './harness/prosody.js';
import { SERVICE_CONFIG, SERVICE_USER, startTestProxy } from './harness/proxy.js';
import type { Backend } from './harness/common.js';
import { completed, ensurePythonStacks, report, runPy } from './harness/python.js';

const PASSWORD = 'secret';
const JULIET = 'juliet@capulet.lit';
const ROMEO = 'romeo@montague.lit';
const NURSE = 'nurse@capulet.lit';
const USERS: Array<[string, string, string]> = [JULIET, ROMEO, NURSE].map((j) => [...(j.split('@') as [string, string]), PASSWORD]);

ensurePythonStacks();

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`slixmpp chat, offline messages and carbons on ${kind}`, async (t) => {
    const backend: Backend = kind === 'ejabberd' ? await startEjabberd({ users: USERS }) : await startProsody({ users: [...USERS, SERVICE_USER] });
    t.teardown(() => backend.stop());
    const proxy = await startTestProxy(backend, kind === 'prosody' ? SERVICE_CONFIG : {});
    t.teardown(() => proxy.stop());
    const slix = (scenario: string, roles: Record<string, string>) =>
      runPy('slixmpp_chat.py', PASSWORD, [scenario, '127.0.0.1', String(proxy.port), ...Object.entries(roles).flatMap(([r, j]) => ['--jid', `${r}=${j}`])]);
    completed(t, await slix('enrol', { A: JULIET, B: ROMEO, C: NURSE }));

    t.test('carbons: a sent copy and a received copy for the other resource', async (t) => {
      const r = await slix('carbons', { A: JULIET, A2: JULIET, B: ROMEO });
      completed(t, r);
      const got = r.get('message', { client: 'B', body: 'Wherefore art thou?' });
      t.equal(got?.from, `${JULIET}/balcony`, "B gets it from A's full JID");
      t.equal(got?.delay, null, 'without a delay');
      t.equal(r.get('carbon_sent', { client: 'A2' })?.to, ROMEO, "A2's sent carbon: A's message to B");
      t.equal(r.get('carbon_received', { client: 'A2' })?.from, `${ROMEO}/orchard`, "A2's received carbon: B's answer to A");
      t.notOk(r.get('message', { client: 'A2' }), 'A2 gets no message itself');
      t.notOk(r.get('carbon_sent', { client: 'A' }), 'the sender gets no copy of its own message');
      t.equal(r.all('message', { client: 'B' }).length, 1, 'B gets the message once');
      report(t, r);
    });

    t.test('offline: both messages at the next login, in order, with delays', async (t) => {
      const r = await slix('offline', { A: JULIET, C: NURSE });
      completed(t, r);
      const got = r.all('message', { client: 'C' });
      t.same(got.map((m) => m.body), ['offline 1', 'offline 2'], 'in order, once each');
      t.ok(got.every((m) => typeof m.delay === 'string'), 'each with a XEP-0203 delay (slixmpp xep_0203)');
      report(t, r);
    });

    const aio = (scenario: string, roles: Record<string, string>) =>
      runPy('aioxmpp_chat.py', PASSWORD, [scenario, '127.0.0.1', String(proxy.port), ...Object.entries(roles).flatMap(([r, j]) => ['--jid', `${r}=${j}`])]);

    t.test('aioxmpp: CarbonsClient and the IM dispatcher, a received and a sent carbon', async (t) => {
      const r = await aio('carbons', { A: JULIET, A2: JULIET, B: ROMEO });
      completed(t, r);
      for (const c of ['A', 'A2']) t.ok(r.get('carbons_enabled', { client: c }), `${c}: CarbonsClient.enable() succeeded`);
      const got = r.all('message', { client: 'A', body: 'Wherefore art thou?' });
      t.same(got.map((m) => [m.from, m.source, m.sent]), [[`${ROMEO}/orchard`, 'STREAM', false]], "A gets B's message to its full JID once");
      const rc = r.all('message', { client: 'A2', body: 'Wherefore art thou?' });
      t.same(rc.map((m) => [m.source, m.sent, m.from, m.to]), [['CARBONS', false, `${ROMEO}/orchard`, `${JULIET}/balcony`]], 'A2: one received carbon of it (IMDispatcher unwrapped it)');
      const back = r.all('message', { client: 'B', body: 'Deny thy father' });
      t.same(back.map((m) => [m.from, m.id, m.delay]), [[`${JULIET}/balcony`, 'j1', null]], "B gets A's message once, with its id, live");
      const sc = r.all('message', { client: 'A2', body: 'Deny thy father' });
      t.same(sc.map((m) => [m.source, m.sent, m.to]), [['CARBONS', true, ROMEO]], 'A2: one sent carbon of it');
      t.notOk(r.get('message', { client: 'A', body: 'Deny thy father', source: 'CARBONS' }), 'the sender gets no copy of its own message');
      t.ok(r.get('conversation_message', { client: 'A2', conversation: ROMEO, body: 'Deny thy father', is_self: true }), "A2's p2p conversation with B shows A's message as its own");
      t.ok(r.get('conversation_message', { client: 'A2', conversation: ROMEO, body: 'Wherefore art thou?', is_self: false }), "and B's message as B's");
      report(t, r);
    });

    t.test('aioxmpp: messages to an offline user, at her next login, with delays', async (t) => {
      const r = await aio('offline', { A: JULIET, C: NURSE });
      completed(t, r);
      const got = r.all('message', { client: 'C' }).filter((m) => typeof m.body === 'string');
      t.same(got.map((m) => [m.body, m.id, m.from]), [['aioxmpp offline 1', 'o1', `${JULIET}/balcony`], ['aioxmpp offline 2', 'o2', `${JULIET}/balcony`]], 'in order, once each, with their ids');
      t.ok(got.length > 0 && got.every((m) => typeof m.delay === 'string'), 'each with a XEP-0203 delay (aioxmpp Message.xep0203_delay)');
      report(t, r);
    });
  });
}
