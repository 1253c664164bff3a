// Issue 6 point 6: many first logins at once. Each fresh account's setup creates its nodes; on
// ejabberd 23.01 concurrent creations abort inside mod_pubsub (a Mnesia `cyclic` abort, answered
// `internal-server-error`), so the setup must retry. Every login must end with a working roster and
// the client's own presence back, on both backends.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Element } from 'ltx';
import { startEjabberd } from './harness/ejabberd.js';
import { startProsody } from './harness/prosody.js';
import { startTestProxy } from './harness/proxy.js';
import { connect, RawClient, waitFor, xml, type XmppClient } from './harness/xmpp.js';
import type { Backend } from './harness/common.js';
import { defaultRules } from '../src/rules/index.js';
import { SETUP_RETRY } from '../src/rules/retry.js';

const ACCOUNTS = 48;
/** the load of the report (16 at a time failed 40% of first logins on ejabberd) */
const AT_A_TIME = 16;
const DOMAIN = 'capulet.lit';
const PASSWORD = 'secret';
const NS_ROSTER = 'jabber:iq:roster';

type Client = XmppClient & { received: Element[] };

/** One first login: roster get, initial presence, own presence back. Returns why it failed, if it did. */
async function firstLogin(port: number, user: string): Promise<string | undefined> {
  let c: Client | undefined;
  let streamError: string | undefined;
  try {
    c = (await connect({ port, domain: DOMAIN, username: user, password: PASSWORD, resource: 'first', mechanism: 'PLAIN' })) as Client;
    c.on('error', (e: { condition?: string; text?: string }) => (streamError ??= `${e.condition ?? String(e)} ${e.text ?? ''}`.trim()));
    const roster = await c.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })), 25_000);
    if (!roster.getChild('query', NS_ROSTER)) return 'roster result without a query';
    await c.send(xml('presence'));
    const full = c.jid!.toString();
    const answer = await waitFor(c, (s) => s.name === 'presence' && s.attrs.from === full, 25_000);
    if (answer.attrs.type === 'error') return `presence error: ${answer.getChild('error')?.children.map(String).join('')}`;
    return undefined;
  } catch (err) {
    return streamError ? `stream error ${streamError}` : String(err);
  } finally {
    await c?.stop().catch(() => undefined);
  }
}

/** Run `fn` over `items`, `n` at a time. */
async function pool<T, R>(items: T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: n }, worker));
  return out;
}

/** How often mod_pubsub aborted a transaction (ejabberd's error log): the setup retried that many. */
function aborts(backend: Backend): number {
  try {
    return readFileSync(join(backend.dir, 'logs', 'error.log'), 'utf8').split('{aborted,').length - 1;
  } catch {
    return 0;
  }
}

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`${ACCOUNTS} first logins, ${AT_A_TIME} at a time, on ${kind}`, async (t) => {
    const users = Array.from({ length: ACCOUNTS }, (_, i) => `fresh${i}`);
    // warning level: at info, ejabberd's logger is itself a bottleneck under a burst of logins
    const backend = kind === 'ejabberd' ? await startEjabberd({ loglevel: 'warning' }) : await startProsody({ loglevel: 'warn' });
    t.teardown(() => backend.stop());
    await backend.registerAll(users.map((u) => [u, DOMAIN, PASSWORD]));
    const proxy = await startTestProxy(backend);
    t.teardown(() => proxy.stop());
    const started = Date.now();
    const results = await pool(users, AT_A_TIME, (u) => firstLogin(proxy.port, u));
    const failed = results.map((r, i) => (r ? `${users[i]}: ${r}` : undefined)).filter((r): r is string => r !== undefined);
    t.comment(`${ACCOUNTS - failed.length}/${ACCOUNTS} first logins worked in ${Date.now() - started} ms${kind === 'ejabberd' ? `; mod_pubsub aborted ${aborts(backend)} transactions` : ''}`);
    t.same(failed, [], 'every first login has a roster and gets its own presence back');

    t.test('a setup that keeps failing ends the session with a stream error', async (t) => {
      // a setup with no time at all: the same end as after the last retry, deterministically
      const hasty = await startTestProxy(backend, {}, defaultRules({ setupRetry: { ...SETUP_RETRY, budgetMs: 0 } }));
      t.teardown(() => hasty.stop());
      const raw = await RawClient.login(hasty.port, DOMAIN, users[0]!, PASSWORD, 'doomed');
      t.teardown(() => raw.close());
      const m = await raw.expect(/<stream:error><internal-server-error [^>]*\/><text [^>]*>([^<]*)<\/text><\/stream:error>/, 10_000);
      t.match(m[1], /^account setup failed: remote-server-timeout/, 'internal-server-error, and why');
      await raw.waitClosed();
    });
  });
}
