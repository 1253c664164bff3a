// RFC 6121 Appendix A, table by table: the subscription state machine the roster runs on.
import t from 'tap';
import { inbound, outbound, type SubState, type Subscription, type SubscriptionType } from '../src/rules/subscription-states.js';

/** The RFC's state names: "None + Pending Out", "To + Pending In", "Both"... */
function state(name: string): SubState {
  const [base, pending] = name.split(' + ');
  const subscription = base!.toLowerCase() as Subscription;
  return {
    subscription,
    pendingOut: pending === 'Pending Out' || pending === 'Pending Out/In',
    pendingIn: pending === 'Pending In' || pending === 'Pending Out/In',
    approved: false,
  };
}

function name(s: SubState): string {
  const base = s.subscription[0]!.toUpperCase() + s.subscription.slice(1);
  const p = s.pendingOut && s.pendingIn ? ' + Pending Out/In' : s.pendingOut ? ' + Pending Out' : s.pendingIn ? ' + Pending In' : '';
  return base + p;
}

const STATES = ['None', 'None + Pending Out', 'None + Pending In', 'None + Pending Out/In', 'To', 'To + Pending In', 'From', 'From + Pending Out', 'Both'];

// [existing state, new state] for each table; 'same' = no state change
const OUTBOUND: Record<SubscriptionType, string[]> = {
  // A.2.1
  subscribe: ['None + Pending Out', 'same', 'None + Pending Out/In', 'same', 'same', 'same', 'From + Pending Out', 'same', 'same'],
  // A.2.2
  unsubscribe: ['same', 'None', 'same', 'None + Pending In', 'None', 'None + Pending In', 'same', 'From', 'From'],
  // A.2.3 (None, None + Pending Out and To: a pre-approval, no visible change)
  subscribed: ['same', 'same', 'From', 'From + Pending Out', 'same', 'Both', 'same', 'same', 'same'],
  // A.2.4
  unsubscribed: ['same', 'same', 'None', 'None + Pending Out', 'same', 'To', 'None', 'None + Pending Out', 'To'],
};

// [new state, delivered?] for each inbound table
const INBOUND: Record<SubscriptionType, Array<[string, boolean]>> = {
  // A.3.1 (From, From + Pending Out, Both: auto-reply, not delivered)
  subscribe: [['None + Pending In', true], ['None + Pending Out/In', true], ['same', false], ['same', false], ['To + Pending In', true], ['same', false], ['same', false], ['same', false], ['same', false]],
  // A.3.2
  unsubscribe: [['same', false], ['same', false], ['None', true], ['None + Pending Out', true], ['same', false], ['To', true], ['None', true], ['None + Pending Out', true], ['To', true]],
  // A.3.3
  subscribed: [['same', false], ['To', true], ['same', false], ['To + Pending In', true], ['same', false], ['same', false], ['same', false], ['Both', true], ['same', false]],
  // A.3.4
  unsubscribed: [['same', false], ['None', true], ['same', false], ['None + Pending In', true], ['None', true], ['None + Pending In', true], ['same', false], ['From', true], ['From', true]],
};

t.test('A.2 outbound', async (t) => {
  for (const [type, expected] of Object.entries(OUTBOUND) as Array<[SubscriptionType, string[]]>) {
    STATES.forEach((s, i) => {
      const r = outbound(state(s), type);
      const want = expected[i] === 'same' ? s : expected[i]!;
      t.equal(name(r.state), want, `${type} in "${s}"`);
    });
  }
});

t.test('A.3 inbound', async (t) => {
  for (const [type, expected] of Object.entries(INBOUND) as Array<[SubscriptionType, Array<[string, boolean]>]>) {
    STATES.forEach((s, i) => {
      const r = inbound(state(s), type);
      const [next, deliver] = expected[i]!;
      t.equal(name(r.state), next === 'same' ? s : next, `${type} in "${s}": state`);
      t.equal(r.deliver, deliver, `${type} in "${s}": delivered`);
    });
  }
});

t.test('routing of outbound stanzas (RFC 6121 §3.1.2, §3.2.2, §3.3.2)', async (t) => {
  t.ok(outbound(state('None'), 'subscribe').route, 'a request always travels');
  t.ok(outbound(state('Both'), 'subscribe').route, 'even when already subscribed (the contact answers at once)');
  t.notOk(outbound(state('None'), 'subscribed').route, 'an approval without a request is a pre-approval, kept');
  t.ok(outbound(state('None + Pending In'), 'subscribed').route);
  t.notOk(outbound(state('None'), 'unsubscribed').route, 'nothing to deny');
  t.ok(outbound(state('From'), 'unsubscribed').route, 'a revocation travels');
  t.notOk(outbound(state('From'), 'unsubscribe').route, 'no subscription to cancel');
  t.ok(outbound(state('To'), 'unsubscribe').route);
});

t.test('pre-approval (RFC 6121 §3.4)', async (t) => {
  const pre = outbound(state('None'), 'subscribed').state;
  t.ok(pre.approved, 'approved flag set');
  const r = inbound(pre, 'subscribe');
  t.equal(r.reply, 'subscribed', 'a later request is approved at once');
  t.notOk(r.deliver, 'and not shown to the user');
  t.equal(r.state.subscription, 'from');
  t.notOk(r.state.approved, 'the flag is used up');
  t.notOk(outbound(pre, 'unsubscribed').state.approved, 'unsubscribed cancels a pre-approval');
  t.equal(inbound(state('Both'), 'subscribe').reply, 'subscribed', 'already approved: answered at once');
});
