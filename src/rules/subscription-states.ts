// RFC 6121 Appendix A: presence subscription states and what each of the four subscription presence
// types does to them, on the user's side (outbound, A.2) and on the contact's side (inbound, A.3).
// Pure functions, so that the tables are tested line by line (test/subscription-states.test.ts).

export type Subscription = 'none' | 'to' | 'from' | 'both';
export type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

export interface SubState {
  subscription: Subscription;
  /** we asked for the contact's presence and wait (ask='subscribe') */
  pendingOut: boolean;
  /** the contact asked for our presence and waits */
  pendingIn: boolean;
  /** RFC 6121 §3.4 pre-approval: a future request from the contact is approved at once */
  approved: boolean;
}

export const NO_STATE: SubState = { subscription: 'none', pendingOut: false, pendingIn: false, approved: false };

const hasTo = (s: Subscription) => s === 'to' || s === 'both';
const hasFrom = (s: Subscription) => s === 'from' || s === 'both';

function join(to: boolean, from: boolean): Subscription {
  return to ? (from ? 'both' : 'to') : from ? 'from' : 'none';
}

export interface OutboundResult {
  state: SubState;
  /** send the stanza on to the contact (its inbox) */
  route: boolean;
}

/** A.2: the user sends `type` to the contact. */
export function outbound(s: SubState, type: SubscriptionType): OutboundResult {
  const to = hasTo(s.subscription);
  const from = hasFrom(s.subscription);
  switch (type) {
    case 'subscribe':
      // A.2.1; routed in every state (the contact's side answers at once if it already approved)
      return { state: { ...s, pendingOut: !to }, route: true };
    case 'unsubscribe':
      // A.2.2
      return { state: { ...s, subscription: join(false, from), pendingOut: false }, route: to || s.pendingOut };
    case 'subscribed':
      // A.2.3; with no request waiting it is a pre-approval (§3.4), never routed
      if (s.pendingIn) return { state: { ...s, subscription: join(to, true), pendingIn: false, approved: false }, route: true };
      if (from) return { state: s, route: false };
      return { state: { ...s, approved: true }, route: false };
    case 'unsubscribed':
      // A.2.4 (also cancels a pre-approval, §3.4)
      if (s.pendingIn || from) return { state: { ...s, subscription: join(to, false), pendingIn: false, approved: false }, route: true };
      return { state: { ...s, approved: false }, route: false };
  }
}

export interface InboundResult {
  state: SubState;
  /** deliver the stanza to the user's available resources */
  deliver: boolean;
  /** answer the contact at once with this type (already approved / pre-approved) */
  reply?: SubscriptionType;
}

/** A.3: the contact's `type` arrives for the user. */
export function inbound(s: SubState, type: SubscriptionType): InboundResult {
  const to = hasTo(s.subscription);
  const from = hasFrom(s.subscription);
  switch (type) {
    case 'subscribe':
      // A.3.1, §3.1.3: already subscribed -> auto-reply; pre-approved -> approve; else wait for the user
      if (from) return { state: s, deliver: false, reply: 'subscribed' };
      if (s.approved) return { state: { ...s, subscription: join(to, true), pendingIn: false, approved: false }, deliver: false, reply: 'subscribed' };
      if (s.pendingIn) return { state: s, deliver: false };
      return { state: { ...s, pendingIn: true }, deliver: true };
    case 'unsubscribe':
      // A.3.2
      if (s.pendingIn || from) return { state: { ...s, subscription: join(to, false), pendingIn: false }, deliver: true };
      return { state: s, deliver: false };
    case 'subscribed':
      // A.3.3: only an approval we asked for counts
      if (s.pendingOut) return { state: { ...s, subscription: join(true, from), pendingOut: false }, deliver: true };
      return { state: s, deliver: false };
    case 'unsubscribed':
      // A.3.4
      if (s.pendingOut || to) return { state: { ...s, subscription: join(false, from), pendingOut: false }, deliver: true };
      return { state: s, deliver: false };
  }
}

export function isSubscriptionType(t: string | undefined): t is SubscriptionType {
  return t === 'subscribe' || t === 'subscribed' || t === 'unsubscribe' || t === 'unsubscribed';
}

export { hasTo, hasFrom };
