// The service account (--service-jid, src/service/): its configuration, its login on each backend,
// owning a node on a pubsub component that a user can then use, reconnection after a cut or a
// half-open connection, a wrong password, and that its password never reaches the logs.
//
// To use it in another test: list SERVICE_USER among the backend's users and pass SERVICE_CONFIG
// to startTestProxy (test/harness/proxy.ts).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Element } from 'ltx';
import { ConfigError, fromEnv, fromFile, makeConfig, resolveConfig } from '../src/config.js';
import * as ps from '../src/pubsub/requests.js';
import { defaultRules } from '../src/rules/index.js';
import type { Rule, ServiceRequester } from '../src/rules/types.js';
import { ServiceAccount } from '../src/service/account.js';
import { StanzaError } from '../src/xmpp/stanza-error.js';
import { startCapture } from './harness/capture.js';
import { CERTS, ROOT, type Backend } from './harness/common.js';
import { recordingLogger } from './harness/admin.js';
import { startEjabberd } from './harness/ejabberd.js';
import { startProsody } from './harness/prosody.js';
import { SERVICE_CONFIG, SERVICE_USER, startTestProxy } from './harness/proxy.js';
import { connect, xml } from './harness/xmpp.js';

const PUBSUB = 'pubsub.capulet.lit';
const NODE = 'service-owned';
const UPSTREAM = 'tcp://127.0.0.1:5222';
const WRONG = 'wrong-secret';

/** Every log line of this file's proxies and accounts, at trace level: the password must never be in one. */
const { log, raw: lines } = recordingLogger('trace');
/** The log lines with this message, from line `since` on. */
const logged = (msg: string, since = 0) => lines.slice(since).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);

async function until(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What a promise rejects with (a test failure if it resolves). */
async function failure(p: Promise<unknown>): Promise<StanzaError> {
  return p.then(
    () => {
      throw new Error('resolved, expected a rejection');
    },
    (err: unknown) => err as StanzaError,
  );
}

const configError = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return 'no error';
};

t.test('configuration: --service-jid, --service-password-file, XEP207_SERVICE_PASSWORD', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xep207-svc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'password');
  writeFileSync(file, 'from-file\n');
  const jid = { upstream: UPSTREAM, serviceJid: 'proxy@Capulet.lit' };
  const fromF = resolveConfig({ ...jid, servicePasswordFile: file });
  t.equal(fromF.serviceJid, 'proxy@capulet.lit', 'the JID, domain normalised');
  t.equal(fromF.servicePassword, 'from-file', 'the file without its final line break');
  t.equal(resolveConfig(jid, fromEnv({ XEP207_SERVICE_PASSWORD: 'from-env' })).servicePassword, 'from-env');
  t.notOk('serviceJid' in resolveConfig({ upstream: UPSTREAM }), 'default: no service account');

  t.match(configError(() => resolveConfig(jid)), /^--service-jid: needs a password/);
  for (const bad of ['capulet.lit', 'proxy@capulet.lit/res', 'a@b@c', '@capulet.lit']) {
    t.match(configError(() => resolveConfig({ upstream: UPSTREAM, serviceJid: bad, servicePassword: 'x' })), /^--service-jid: expected a bare JID with a localpart/, bad);
  }
  t.match(configError(() => resolveConfig({ ...jid, servicePasswordFile: file, servicePassword: 'x' })), /^--service-password-file: .* not both/);
  t.match(configError(() => resolveConfig({ upstream: UPSTREAM, servicePassword: 'x' })), /^--service-jid: required/);
  t.match(configError(() => resolveConfig({ ...jid, servicePasswordFile: join(dir, 'none') })), /^--service-password-file: cannot read .*ENOENT/);
  writeFileSync(join(dir, 'empty'), '\n');
  t.match(configError(() => resolveConfig({ ...jid, servicePasswordFile: join(dir, 'empty') })), /is empty/);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ servicePassword: 'x' }));
  t.match(configError(() => fromFile(join(dir, 'config.json'))), /read from XEP207_SERVICE_PASSWORD only/, 'never from the JSON file');
});

t.test('CLI: no password exits 2 with one line; the password is no flag', async (t) => {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('XEP207_')) delete env[k];
  const cli = (args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin', 'xep207-proxy'), '--upstream', UPSTREAM, ...args], { encoding: 'utf8', env, timeout: 20_000 });
  const r = cli(['--service-jid', 'proxy@capulet.lit']);
  t.equal(r.status, 2);
  t.equal(r.stderr, 'xep207-proxy: error: --service-jid: needs a password: --service-password-file file or XEP207_SERVICE_PASSWORD\n');
  const flag = cli(['--service-jid', 'proxy@capulet.lit', '--service-password', 'x']);
  t.equal(flag.status, 2);
  t.match(flag.stderr, /unknown option '--service-password'/);
  const help = cli(['--help']);
  for (const s of ['--service-jid <jid>', '--service-password-file <file>', 'XEP207_SERVICE_PASSWORD', 'XEP207_SERVICE_JID']) t.match(help.stdout, s);
});

const NOTIFY = 'http://jabber.org/protocol/pubsub#event';

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(kind, async (t) => {
    const users: Array<[string, string, string]> = [['juliet', 'capulet.lit', 'secret'], ['romeo', 'montague.lit', 'secret'], SERVICE_USER];
    const backend: Backend = kind === 'ejabberd' ? await startEjabberd({ users }) : await startProsody({ users });
    t.teardown(() => backend.stop());
    // the proxy reaches the backend through a relay that the test can cut
    const relay = await startCapture(backend.host, backend.port);
    t.teardown(() => relay.stop());
    const seen: Array<ServiceRequester | undefined> = [];
    const probe: Rule = { name: 'probe', onBound: (ctx) => void seen.push(ctx.service) };
    const px = await startTestProxy({ host: '127.0.0.1', port: relay.port }, SERVICE_CONFIG, [probe, ...defaultRules()], log);
    t.teardown(() => px.stop());
    const svc = px.proxy.service!;
    const notifications: Element[] = [];
    svc.onStanza = (el) => void (el.getChild('event', NOTIFY) && notifications.push(el));

    t.test('it logs in when the proxy listens; rules reach it through their context', async (t) => {
      await svc.start();
      t.equal(svc.state, 'ready');
      t.equal(svc.bare, 'proxy@capulet.lit');
      t.match(svc.jid, /^proxy@capulet\.lit\/xep207-proxy-[\w-]+$/, 'bound with a resource of its own');
      t.ok(logged('service account ready').length >= 1, 'logged');
      const juliet = await connect({ port: px.port, domain: 'capulet.lit', username: 'juliet', password: 'secret', resource: 'balcony' });
      t.teardown(() => juliet.stop());
      t.equal(seen[0], svc, 'RuleContext.service is the proxy-wide account');
    });

    t.test('it creates a whitelist node on the component; juliet, made publisher, publishes and reads', async (t) => {
      const create = ps.createNode(NODE, { 'pubsub#access_model': 'whitelist' });
      create.attrs.to = PUBSUB;
      t.equal((await svc.request(create)).attrs.type, 'result', 'created (on Prosody: as an admin of the component)');
      const affiliate = ps.setAffiliations(NODE, [['juliet@capulet.lit', 'publisher']]);
      affiliate.attrs.to = PUBSUB;
      await svc.request(affiliate);
      await svc.request(ps.subscribe(PUBSUB, NODE, svc.bare));

      const juliet = await connect({ port: px.port, domain: 'capulet.lit', username: 'juliet', password: 'secret', resource: 'balcony' });
      const romeo = await connect({ port: px.port, domain: 'montague.lit', username: 'romeo', password: 'secret', resource: 'orchard' });
      t.teardown(() => Promise.all([juliet.stop(), romeo.stop()]));
      const payload = xml('entry', { xmlns: 'urn:example:service' }, 'a rose');
      await juliet.iqCaller.request(ps.publish(PUBSUB, NODE, 'i1', payload));
      const got = await juliet.iqCaller.request(ps.items(PUBSUB, NODE));
      const item = got.getChild('pubsub')?.getChild('items')?.getChild('item');
      t.equal(item?.attrs.id, 'i1', 'juliet reads her item');
      t.equal(item?.getChild('entry', 'urn:example:service')?.getText(), 'a rose');
      const denied = await failure(romeo.iqCaller.request(ps.items(PUBSUB, NODE)));
      t.ok(denied, `romeo, not on the whitelist, may not read (${(denied as { condition?: string }).condition})`);
      await until(() => notifications.length > 0);
      t.equal(notifications[0]!.attrs.from, PUBSUB, "the account's onStanza gets the node's notification");
    });

    t.test('a cut connection: requests in flight fail, requests of the outage wait, then succeed', async (t) => {
      const before = svc.jid;
      const mark = lines.length;
      const inFlight = failure(svc.request(ps.items(PUBSUB, NODE)));
      relay.drop();
      const lost = await inFlight;
      t.equal(lost.condition, 'remote-server-timeout', 'in flight: remote-server-timeout');
      t.match(lost.text, /connection was lost/);
      await until(() => svc.state !== 'ready');
      const started = Date.now();
      const answer = await svc.request(ps.items(PUBSUB, NODE));
      t.equal(answer.getChild('pubsub')?.getChild('items')?.getChild('item')?.attrs.id, 'i1', `answered after the reconnection (${Date.now() - started} ms)`);
      t.equal(svc.state, 'ready');
      t.equal(svc.jid, before, 'the same resource again');
      t.equal(logged('service account connection lost, reconnecting', mark).length, 1, 'the loss logged once');
    });

    t.test('a half-open connection: the keepalive ping finds it, the account reconnects', async (t) => {
      const frozen = await startCapture(backend.host, backend.port);
      t.teardown(() => frozen.stop());
      const config = makeConfig({ upstream: { host: '127.0.0.1', port: frozen.port, tls: false }, requestTimeout: 1500, logLevel: 'trace' });
      const account = new ServiceAccount({
        config,
        jid: SERVICE_CONFIG.serviceJid,
        password: SERVICE_CONFIG.servicePassword,
        log,
        upstreamCa: readFileSync(join(CERTS, 'ca.pem')),
        keepaliveMs: 300,
        backoff: { baseMs: 50, capMs: 200 },
      });
      t.teardown(() => account.close());
      await account.start();
      frozen.freeze();
      await until(() => account.state !== 'ready', 4000);
      const answer = await account.request(ps.items(PUBSUB, NODE), 5000);
      t.equal(answer.attrs.type, 'result', 'a new connection serves');
      await account.close();
      t.equal(account.state, 'closed');
      t.equal((await failure(account.request(ps.items(PUBSUB, NODE)))).condition, 'service-unavailable', 'closed: service-unavailable');
    });

    t.test('a wrong password: an error is logged, sessions are served, requests fail at once', async (t) => {
      const mark = lines.length;
      const bad = await startTestProxy(backend, { ...SERVICE_CONFIG, servicePassword: WRONG }, undefined, log);
      t.teardown(() => bad.stop());
      const started = await failure(bad.proxy.service!.start());
      t.match(started.message, /^service account proxy@capulet\.lit: authentication failed: not-authorized$/);
      const errors = logged('service account login failed, retrying in the background', mark);
      t.ok(errors.some((l) => l.level === 50 && l.reason === 'authentication failed: not-authorized'), 'logged at error level');
      const juliet = await connect({ port: bad.port, domain: 'capulet.lit', username: 'juliet', password: 'secret', resource: 'balcony' });
      t.teardown(() => juliet.stop());
      const pong = await juliet.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      t.equal(pong.attrs.type, 'result', 'a client session works');
      const at = Date.now();
      const err = await failure(bad.proxy.service!.request(ps.items(PUBSUB, NODE)));
      t.ok(err instanceof StanzaError);
      t.equal(err.condition, 'internal-server-error');
      t.equal(err.text, 'the service account proxy@capulet.lit cannot log in: authentication failed: not-authorized');
      t.ok(Date.now() - at < 500, 'at once, not after the time-out');
    });
  });
}

t.test('the password never reaches the logs (trace level)', async (t) => {
  t.ok(lines.some((l) => l.includes('"in":"service"')), "the account's stanzas were traced");
  const all = lines.join('\n');
  for (const password of [SERVICE_CONFIG.servicePassword, WRONG]) {
    t.notOk(all.includes(password), 'no password');
    t.notOk(all.includes(Buffer.from(`\0proxy\0${password}`).toString('base64')), 'no SASL PLAIN payload');
  }
});
