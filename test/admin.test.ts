// Issue 9 points 5 and 8 on both backends, in-process: the admin listener's /healthz, /readyz and
// /metrics (scraped and parsed), and the operator trace (--trace and POST/DELETE /trace/<jid>).
import t from 'tap';
import os from 'node:os';
import type { Element } from 'ltx';
import { startEjabberd } from './harness/ejabberd.js';
import { startProsody } from './harness/prosody.js';
import { startTestProxy } from './harness/proxy.js';
import { freePort, type Backend } from './harness/common.js';
import { RawClient, HEADER, connect, xml } from './harness/xmpp.js';
import { startCapture } from './harness/capture.js';
import { PASSWORD, USERS, isPresence, sessions, subscribe, type Client } from './harness/roster.js';
import { admin, parsePrometheus, recordingLogger, sample, until } from './harness/admin.js';
import { waitFor } from './harness/xmpp.js';

const LOOPBACK_ADMIN = { host: '127.0.0.1', port: 0 };

/** A software version query to the server: no rule maps it (its answer, or error, passes through). */
async function version(c: Client): Promise<void> {
  await c.iqCaller.request(xml('iq', { type: 'get', to: c.jid!.domain }, xml('query', { xmlns: 'jabber:iq:version' }))).catch(() => undefined);
}

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`admin listener and trace on ${kind}`, async (t) => {
    const backend: Backend = kind === 'ejabberd' ? await startEjabberd({ users: USERS }) : await startProsody({ users: USERS });
    t.teardown(() => backend.stop());
    const { log, lines } = recordingLogger();
    const p = await startTestProxy(backend, { adminListen: LOOPBACK_ADMIN, trace: ['juliet@capulet.lit'] }, undefined, log);
    t.teardown(() => p.stop());
    const adminPort = p.proxy.adminAddress!.port;
    const { login, online } = sessions(t, PASSWORD, () => p);

    t.test('/healthz, /readyz: the backend answers a stream header; a dead one, a drain: 503', async (t) => {
      const health = await admin(adminPort, '/healthz');
      t.equal(health.status, 200);
      t.equal(health.body, 'ok\n');
      t.equal((await admin(adminPort, '/healthz', 'HEAD')).status, 200, 'HEAD');
      t.equal((await admin(adminPort, '/healthz', 'POST')).status, 405, 'POST: 405');
      t.equal((await admin(adminPort, '/nothing')).status, 404, 'unknown path: 404');
      const ready = await admin(adminPort, '/readyz');
      t.equal(ready.status, 200, ready.body);
      const r = JSON.parse(ready.body) as { ready: boolean; ms: number };
      t.equal(r.ready, true);
      t.type(r.ms, 'number', 'the time the backend took');

      const nowhere = await startTestProxy({ host: '127.0.0.1', port: await freePort() }, { adminListen: LOOPBACK_ADMIN });
      t.teardown(() => nowhere.stop());
      const down = await admin(nowhere.proxy.adminAddress!.port, '/readyz');
      t.equal(down.status, 503, 'backend unreachable: 503');
      t.match(JSON.parse(down.body), { ready: false, reason: /cannot reach|closed/ });
      t.equal((await admin(nowhere.proxy.adminAddress!.port, '/healthz')).status, 200, 'alive all the same');

      // a backend that accepts but never answers: 503 within the probe's time-out
      const silent = await import('node:net').then((net) => net.createServer(() => undefined));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
      t.teardown(() => silent.close());
      const mute = await startTestProxy({ host: '127.0.0.1', port: (silent.address() as { port: number }).port }, { adminListen: LOOPBACK_ADMIN });
      t.teardown(() => mute.stop());
      const started = Date.now();
      const hung = await admin(mute.proxy.adminAddress!.port, '/readyz');
      t.equal(hung.status, 503, 'no stream header: 503');
      t.ok(Date.now() - started < 4000, 'within the probe time-out');
      t.match(JSON.parse(hung.body), { reason: /no stream header/ });

      nowhere.proxy.draining = true;
      t.same(JSON.parse((await admin(nowhere.proxy.adminAddress!.port, '/readyz')).body), { ready: false, reason: 'draining' }, 'draining: 503');
    });

    t.test('/metrics: sessions, logins, stanzas by rule, rewrite durations, stream errors, bytes, event-loop lag', async (t) => {
      const before = parsePrometheus((await admin(adminPort, '/metrics')).body).samples;
      t.equal(sample(before, 'xep207_sessions', { transport: 'tcp' }), 0, 'no session yet');
      t.equal(sample(before, 'xep207_backend_request_timeouts_total', { account: 'session' }), 0, 'time-outs: 0');
      const juliet = await login('juliet', 'capulet.lit', 'metrics');
      const romeo = await login('romeo', 'montague.lit', 'metrics');
      await Promise.all([online(juliet), online(romeo)]);
      await version(juliet);
      const wrong = await RawClient.connect(p.port);
      wrong.send(HEADER('capulet.lit'));
      await wrong.expect(/<\/stream:features>/);
      wrong.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0juliet\0wrong').toString('base64')}</auth>`);
      await wrong.expect(/<failure[^>]*><not-authorized/);
      wrong.close();
      const bad = await RawClient.connect(p.port);
      bad.send(HEADER('capulet.lit'));
      await bad.expect(/<\/stream:features>/);
      bad.send('<message><</message>');
      await bad.expect(/<not-well-formed/);
      await bad.waitClosed();
      await until(() => p.proxy.sessions.size === 2, 'only the two logged-in sessions left');

      const res = await admin(adminPort, '/metrics');
      t.equal(res.status, 200);
      t.match(res.type, /^text\/plain; version=0\.0\.4/, 'Prometheus text format');
      const { types, samples } = parsePrometheus(res.body);
      t.equal(sample(samples, 'xep207_sessions', { transport: 'tcp' }), 2, 'two sessions open');
      t.ok(sample(samples, 'xep207_connections_total', { transport: 'tcp' })! >= 4, 'connections counted');
      t.ok(sample(samples, 'xep207_logins_total', { transport: 'tcp', result: 'ok' })! >= 2, 'logins ok');
      t.ok(sample(samples, 'xep207_logins_total', { transport: 'tcp', result: 'failed' })! >= 1, 'a failed login');
      t.ok(sample(samples, 'xep207_stream_errors_total', { condition: 'not-well-formed' })! >= 1, 'stream errors by condition');
      t.ok(sample(samples, 'xep207_stanzas_total', { direction: 'from_client', rule: 'presence' })! >= 2, 'presence claimed by its rule');
      t.ok(sample(samples, 'xep207_stanzas_total', { direction: 'from_client', rule: 'roster' })! >= 2, 'roster gets');
      t.ok(sample(samples, 'xep207_stanzas_total', { direction: 'from_client', rule: 'pass-through' })! >= 1, 'a version query passed through');
      t.ok(sample(samples, 'xep207_stanzas_total', { direction: 'from_backend', rule: 'pass-through' })! >= 1, 'its answer too');
      t.equal(types.get('xep207_rewrite_duration_seconds'), 'histogram');
      const count = sample(samples, 'xep207_rewrite_duration_seconds_count', { direction: 'from_client', rule: 'presence' })!;
      t.ok(count >= 2, 'presence rewrites timed');
      t.equal(sample(samples, 'xep207_rewrite_duration_seconds_bucket', { direction: 'from_client', rule: 'presence', le: '+Inf' }), count, '+Inf bucket = count');
      t.ok(sample(samples, 'xep207_rewrite_duration_seconds_sum', { direction: 'from_client', rule: 'presence' })! > 0, 'sum of durations');
      const buckets = samples.filter((s) => s.name === 'xep207_rewrite_duration_seconds_bucket' && s.labels.rule === 'presence' && s.labels.direction === 'from_client').map((s) => s.value);
      t.same(buckets, [...buckets].sort((a, b) => a - b), 'buckets cumulative');
      for (const leg of ['client', 'backend']) for (const direction of ['in', 'out']) t.ok(sample(samples, 'xep207_bytes_total', { leg, direction })! > 0, `bytes ${leg} ${direction}`);
      t.ok(sample(samples, 'nodejs_eventloop_lag_seconds')! >= 0, 'event-loop lag');
      t.equal(sample(samples, 'xep207_draining'), 0);
      await Promise.all([juliet.stop(), romeo.stop()]);
      await until(() => p.proxy.sessions.size === 0, 'sessions gone');
      const after = parsePrometheus((await admin(adminPort, '/metrics')).body).samples;
      t.equal(sample(after, 'xep207_sessions', { transport: 'tcp' }), 0, 'sessions closed');
      t.ok(sample(after, 'xep207_bytes_total', { leg: 'client', direction: 'in' })! >= sample(samples, 'xep207_bytes_total', { leg: 'client', direction: 'in' })!, 'bytes of closed sessions kept');
    });

    t.test('a drain: /readyz 503 and xep207_draining 1 from its first moment, until the listener closes', async (t) => {
      const leaving = await startTestProxy(backend, { adminListen: LOOPBACK_ADMIN });
      const port = leaving.proxy.adminAddress!.port;
      const raw = await RawClient.login(leaving.port, 'capulet.lit', 'juliet', PASSWORD, 'draining');
      raw.send('<presence/>');
      await raw.expect(/<presence[^>]*from=["']juliet@capulet.lit\/draining["']/, 10_000);
      const drained = leaving.proxy.drain(5000);
      const [ready, metrics] = await Promise.all([admin(port, '/readyz'), admin(port, '/metrics')]);
      t.equal(ready.status, 503);
      t.same(JSON.parse(ready.body), { ready: false, reason: 'draining' });
      t.equal(sample(parsePrometheus(metrics.body).samples, 'xep207_draining'), 1);
      await raw.expect(/<system-shutdown/);
      await drained;
      await admin(port, '/healthz').then(
        () => t.fail('still listening'),
        () => t.pass('the admin listener is closed once drained'),
      );
    });

    t.test('/metrics: a backend that stops answering: request time-outs', async (t) => {
      const cap = await startCapture(backend.host, backend.port);
      t.teardown(() => cap.stop());
      const slow = await startTestProxy({ host: '127.0.0.1', port: cap.port }, { upstreamTls: 'off', requestTimeout: 300, adminListen: LOOPBACK_ADMIN });
      t.teardown(() => slow.stop());
      const juliet = (await connect({ port: slow.port, domain: 'capulet.lit', username: 'juliet', password: PASSWORD, resource: 'frozen' })) as Client;
      t.teardown(() => juliet.stop().catch(() => undefined));
      await online(juliet);
      cap.freeze();
      await juliet.send(xml('presence', {}, xml('status', {}, 'into the void')));
      const timeouts = async () => sample(parsePrometheus((await admin(slow.proxy.adminAddress!.port, '/metrics')).body).samples, 'xep207_backend_request_timeouts_total', { account: 'session' })!;
      const deadline = Date.now() + 10_000;
      while ((await timeouts()) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      t.ok((await timeouts()) >= 1, 'counted');
    });

    t.test('trace: both sides of every rewrite of the traced user, and only theirs; on and off at runtime', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'traced');
      const romeo = await login('romeo', 'montague.lit', 'watching');
      await Promise.all([online(juliet), online(romeo)]);
      await subscribe(romeo, juliet);
      const rewrites = (jid: string) => lines.filter((l) => l.msg === 'rewrite' && l.trace === jid);
      const outs = (l: Record<string, unknown>) => l.out as Array<{ to?: string; xml?: string; answer?: string }>;

      await juliet.send(xml('presence', {}, xml('status', {}, 'under the trace')));
      const mine = (l: Record<string, unknown>) => l.from === 'client' && String(l.in).includes('under the trace');
      await until(() => rewrites('juliet@capulet.lit').some(mine), 'the presence rewrite logged');
      const pres = rewrites('juliet@capulet.lit').find(mine)!;
      t.match(pres, { from: 'client', rule: 'presence', jid: 'juliet@capulet.lit/traced', level: 30 }, 'at info level, with the rule and the session');
      t.ok(outs(pres).some((o) => o.to === 'backend' && /<publish node=["']presence["']/.test(o.xml!) && o.xml!.includes('under the trace')), 'the pubsub publish it became');
      t.ok(outs(pres).some((o) => o.answer !== undefined && /type=["']result["']/.test(o.answer)), "and the backend's answer");
      await waitFor(romeo, (s: Element) => isPresence('juliet@capulet.lit/traced')(s) && s.getChildText('status') === 'under the trace');
      await version(juliet);
      // (Prosody's error answer does not repeat the query: the request is what is looked for)
      await until(() => rewrites('juliet@capulet.lit').some((l) => l.rule === 'pass-through' && l.from === 'client' && String(l.in).includes('jabber:iq:version')), 'pass-through logged too');
      t.same(rewrites('romeo@montague.lit'), [], 'romeo is not traced');

      // at runtime: romeo on
      const on = await admin(adminPort, '/trace/romeo@montague.lit', 'POST');
      t.equal(on.status, 200);
      t.same(JSON.parse(on.body).trace, ['juliet@capulet.lit', 'romeo@montague.lit']);
      t.same(JSON.parse((await admin(adminPort, '/trace')).body).trace, ['juliet@capulet.lit', 'romeo@montague.lit'], 'GET /trace lists them');
      await juliet.send(xml('presence', {}, xml('status', {}, 'seen by a traced romeo')));
      await until(() => rewrites('romeo@montague.lit').some((l) => l.from === 'backend' && String(l.in).includes('seen by a traced romeo')), "romeo's side: the notification");
      const note = rewrites('romeo@montague.lit').find((l) => l.from === 'backend' && String(l.in).includes('seen by a traced romeo'))!;
      t.match(String(note.in), /http:\/\/jabber.org\/protocol\/pubsub#event/, 'in: the pubsub notification');
      t.ok(outs(note).some((o) => o.to === 'client' && /^<presence/.test(o.xml!) && o.xml!.includes('seen by a traced romeo')), 'out: the legacy presence');
      t.equal(note.rule, 'presence');

      // off again
      t.equal((await admin(adminPort, '/trace/romeo@montague.lit', 'DELETE')).status, 200);
      t.equal((await admin(adminPort, '/trace/romeo@montague.lit', 'DELETE')).status, 404, 'not traced any more: 404');
      const count = rewrites('romeo@montague.lit').length;
      await juliet.send(xml('presence', {}, xml('status', {}, 'after the trace')));
      await waitFor(romeo, (s: Element) => isPresence('juliet@capulet.lit/traced')(s) && s.getChildText('status') === 'after the trace');
      t.equal(rewrites('romeo@montague.lit').length, count, 'nothing more of romeo');
      t.equal((await admin(adminPort, '/trace/not a jid', 'POST')).status, 400, 'a bad JID: 400');
      t.equal((await admin(adminPort, '/trace/' + encodeURIComponent('romeo@montague.lit/watching'), 'POST')).status, 200, 'a full JID');
      await romeo.iqCaller.request(xml('iq', { type: 'get', to: 'montague.lit' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      await until(() => rewrites('romeo@montague.lit/watching').some((l) => l.rule === 'ping'), 'one resource traced');
      await admin(adminPort, '/trace/' + encodeURIComponent('romeo@montague.lit/watching'), 'DELETE');
      await Promise.all([juliet.stop(), romeo.stop()]);
      // the session's close: what the presence rule does for a client that leaves
      await until(() => rewrites('juliet@capulet.lit').some((l) => l.from === 'onClose' && l.rule === 'presence'), 'the close logged');
      const close = rewrites('juliet@capulet.lit').find((l) => l.from === 'onClose' && l.rule === 'presence')!;
      t.ok(outs(close).some((o) => o.to === 'backend' && /<publish node=["']presence["']/.test(o.xml!) && /type=["']unavailable["']/.test(o.xml!)), 'its unavailability published');
      t.notOk(lines.some((l) => JSON.stringify(l).includes(PASSWORD)), 'never a password');
    });

    const external = Object.values(os.networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    const noExternal = 'this machine has no non-loopback IPv4 address to ask from';
    t.test('trace changes only from loopback', { skip: external ? false : noExternal }, async (t) => {
      const open = await startTestProxy(backend, { adminListen: { host: '0.0.0.0', port: 0 } });
      t.teardown(() => open.stop());
      const port = open.proxy.adminAddress!.port;
      const res = await fetch(`http://${external}:${port}/trace/juliet@capulet.lit`, { method: 'POST' });
      t.equal(res.status, 403, 'from another address: 403');
      t.equal((await fetch(`http://${external}:${port}/healthz`)).status, 200, 'health from anywhere');
    });
  });
}
