// §6 with a client stack the proxy's code does not share: slixmpp's own carbons (xep_0280) and delay
// (xep_0203) plugins, through the proxy, on both backends (Prosody with the service account).
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
  });
}
