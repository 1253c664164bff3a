// Unit tests of what the metrics are made of: the lanes' tallies (counts and duration buckets
// without prom-client on the hot path) as the /metrics text shows them, and the tracker's wait for
// the requests in flight that a drain relies on.
import t from 'tap';
import { Metrics } from '../src/admin/metrics.js';
import { LaneTally, DURATION_BUCKETS } from '../src/session/tally.js';
import { Lane, laneRoutes, type LaneHost } from '../src/session/pipeline.js';
import { IqTracker } from '../src/session/tracker.js';
import type { Rule, RuleContext } from '../src/rules/types.js';
import { stanzaOf } from '../src/stream/stanza.js';
import { xml } from '../src/stream/xml.js';
import { parsePrometheus, sample } from './harness/admin.js';

const rules: Rule[] = [
  { name: 'sync', fromClient: (s) => s.name === 'presence' },
  { name: 'async', fromClient: (s) => (s.name === 'iq' ? new Promise((r) => setTimeout(() => r(true), 30)) : false) },
  { name: 'broken', fromClient: (s) => (s.name === 'message' && s.attrs.type === 'error' ? Promise.reject(new Error('no')) : false) },
];

t.test('lanes count per rule; /metrics shows counts, failures and cumulative duration buckets', async (t) => {
  const routes = laneRoutes(rules, 'client');
  const tally = routes.tally;
  const host: LaneHost = { laneForward: () => undefined, laneFailed: () => undefined, laneBusy: () => undefined };
  const lane = new Lane(routes, {} as RuleContext, host);
  lane.push(stanzaOf(xml('presence')));
  lane.push(stanzaOf(xml('presence')));
  lane.push(stanzaOf(xml('iq', { type: 'get', id: '1' })));
  lane.push(stanzaOf(xml('message', { type: 'chat' })));
  lane.push(stanzaOf(xml('message', { type: 'error' })));
  await new Promise((r) => setTimeout(r, 100));
  t.same(tally.claimed, [2, 1, 0]);
  t.same(tally.failed, [0, 0, 1]);
  t.equal(tally.passed, 1, 'the chat message passed through');

  const metrics = new Metrics({ tally: { client: tally, backend: new LaneTally([]) }, bytes: () => ({ clientIn: 1, clientOut: 2, backendIn: 3, backendOut: 4 }) });
  const { types, samples } = parsePrometheus(await metrics.text());
  t.equal(sample(samples, 'xep207_stanzas_total', { direction: 'from_client', rule: 'sync' }), 2);
  t.equal(sample(samples, 'xep207_stanzas_total', { direction: 'from_client', rule: 'pass-through' }), 1);
  t.equal(sample(samples, 'xep207_rule_failures_total', { direction: 'from_client', rule: 'broken' }), 1);
  t.equal(types.get('xep207_rewrite_duration_seconds'), 'histogram');
  const le = (rule: string, bound: string) => sample(samples, 'xep207_rewrite_duration_seconds_bucket', { direction: 'from_client', rule, le: bound });
  t.equal(le('async', '0.01'), 0, 'the 30 ms rewrite is not under 10 ms');
  t.equal(le('async', '0.05'), 1, 'but under 50 ms');
  t.equal(le('async', '+Inf'), 1);
  t.equal(le('sync', String(DURATION_BUCKETS[DURATION_BUCKETS.length - 1])), 2, 'synchronous rewrites in the last finite bucket too');
  const sum = sample(samples, 'xep207_rewrite_duration_seconds_sum', { direction: 'from_client', rule: 'async' })!;
  t.ok(sum >= 0.025 && sum < 0.5, `sum ${sum}`);
  t.equal(sample(samples, 'xep207_bytes_total', { leg: 'backend', direction: 'out' }), 4);
  metrics.opened('ws');
  metrics.login('ws', true);
  const again = parsePrometheus(await metrics.text()).samples;
  t.equal(sample(again, 'xep207_sessions', { transport: 'ws' }), 1, 'another transport slots in');
  t.equal(sample(again, 'xep207_sessions', { transport: 'tcp' }), 0);
  t.equal(sample(again, 'xep207_stanzas_total', { direction: 'from_client', rule: 'sync' }), 2, 'a second scrape does not double the counts');
});

t.test('the tracker: whenIdle waits for the requests in flight, within its time-out', async (t) => {
  let timeouts = 0;
  const tracker = new IqTracker(5000, { accountBare: () => 'juliet@capulet.lit' }, { requestTimedOut: () => timeouts++ });
  const idleNow = Date.now();
  await tracker.whenIdle(1000);
  t.ok(Date.now() - idleNow < 50, 'nothing in flight: at once');
  const iq = xml('iq', { type: 'get', to: 'capulet.lit' });
  const answer = tracker.track(iq);
  const waited = tracker.whenIdle(2000);
  setTimeout(() => tracker.match(stanzaOf(xml('iq', { type: 'result', id: iq.attrs.id as string, from: 'capulet.lit' }))), 50);
  const started = Date.now();
  await waited;
  t.ok(Date.now() - started < 1000, 'resolved by the answer');
  t.equal((await answer).attrs.type, 'result');
  const lost = tracker.track(xml('iq', { type: 'get', to: 'capulet.lit' }), 60_000);
  lost.catch(() => undefined);
  const bounded = Date.now();
  await tracker.whenIdle(200);
  t.ok(Date.now() - bounded >= 190, 'an unanswered request: after the time-out');
  t.equal(tracker.inFlight, 1);
  const short = tracker.track(xml('iq', { type: 'get', to: 'capulet.lit' }), 50);
  // the tracker's timers do not hold the process open (unref): this one does, meanwhile
  const keep = setTimeout(() => undefined, 2000);
  const err = (await short.then(() => undefined, (e: unknown) => e)) as { condition?: string } | undefined;
  clearTimeout(keep);
  t.equal(err?.condition, 'remote-server-timeout');
  t.equal(timeouts, 1, 'a time-out reported');
});
