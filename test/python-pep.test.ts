// Issue 8 with client stacks the proxy's code does not share: slixmpp's own avatar (xep_0084) and
// nickname (xep_0172) plugins on its PEP and caps machinery (test/clients/slixmpp_pep.py), aioxmpp's
// AvatarService, PEPClient and EntityCapsService (test/clients/aioxmpp_pep.py), through
// a proxy instance other than the one the subscriptions were made through, on both backends. The users share presence through @xmpp/client first.
import t from 'tap';
import { twoProxies } from './harness/two-proxies.js';
import { completed, ensurePythonStacks, report, runPy } from './harness/python.js';
import { PASSWORD, enrolAndPair, sessions } from './harness/roster.js';

const JULIET = 'juliet@capulet.lit';
const ROMEO = 'romeo@montague.lit';
const BENVOLIO = 'benvolio@montague.lit';
const USERS: Array<[string, string, string]> = [JULIET, ROMEO, BENVOLIO].map((j) => [...(j.split('@') as [string, string]), PASSWORD]);
const AIO_AVATAR = Buffer.from('\x89PNG\r\n\x1a\nxep207-proxy aioxmpp avatar', 'latin1').toString('base64');
const AVATAR = Buffer.from('\x89PNG\r\n\x1a\nxep207-proxy test avatar', 'latin1').toString('base64');

ensurePythonStacks();

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`python client stacks: avatars and nicknames on ${kind}`, async (t) => {
    const { proxy, other } = await twoProxies(t, kind, USERS);
    await enrolAndPair(sessions(t, PASSWORD, () => proxy), USERS);
    // the subscriptions were made through one proxy instance, the scenarios run through the other
    const py = (script: string, scenario: string, roles: Record<string, string>) =>
      runPy(script, PASSWORD, [scenario, '127.0.0.1', String(other.port), ...Object.entries(roles).flatMap(([r, j]) => ['--jid', `${r}=${j}`])]);

    t.test('slixmpp: an avatar and a nickname published with its plugins: notified to the contact and readable by id; not by a stranger', async (t) => {
      const r = await py('slixmpp_pep.py', 'avatar', { A: JULIET, B: ROMEO, C: BENVOLIO });
      completed(t, r);
      const meta = r.get('avatar_metadata', { client: 'B', from: JULIET });
      t.ok(meta?.id, "B's xep_0084 got the metadata event");
      t.equal(meta?.bytes, String(Buffer.from(AVATAR, 'base64').length), 'with the size');
      t.equal(r.get('nick', { client: 'B', from: JULIET })?.nick, 'Jules', "B's xep_0172 got the nick");
      t.same(r.get('avatar_data', { client: 'B' })?.data, AVATAR, 'B retrieves the avatar data by id');
      const c = r.get('avatar_data', { client: 'C' });
      t.equal(c?.ok, false, `the stranger cannot (${String(c?.condition)})`);
      t.notOk(r.get('avatar_metadata', { client: 'C' }), 'nor is it notified');
      t.notOk(r.get('nick', { client: 'C' }), 'of anything');
      report(t, r);
    });

    t.test('aioxmpp: AvatarService and a PEP node of its own; the stranger gets an error', async (t) => {
      const r = await py('aioxmpp_pep.py', 'avatar', { A: JULIET, B: ROMEO, C: BENVOLIO });
      completed(t, r);
      t.ok(r.get('avatar_metadata', { client: 'B', from: JULIET }), "B's AvatarService signalled on_metadata_changed");
      t.same(r.all('avatar_data', { client: 'B', ok: true }).map((e) => e.data), [AIO_AVATAR], 'and fetched the image by its id');
      t.equal(r.get('nick', { client: 'B', from: JULIET })?.nick, 'Jules', 'the nick node (access_model presence in publish-options) notified');
      const c = r.get('avatar_data', { client: 'C' });
      t.equal(c?.ok, false, `the stranger gets an error (${String(c?.condition)})`);
      t.notOk(r.get('avatar_metadata', { client: 'C', from: JULIET }), 'and no notification');
      report(t, r);
    });

    t.test('slixmpp: the last metadata and nick at the next login', async (t) => {
      const r = await py('slixmpp_pep.py', 'login', { A: JULIET, B: ROMEO });
      completed(t, r);
      t.equal(r.get('nick', { client: 'B', from: JULIET })?.nick, 'Jules', 'the nick');
      t.ok(r.get('avatar_metadata', { client: 'B', from: JULIET })?.id, 'the avatar metadata');
      report(t, r);
    });
  });
}
