// One contact of a user's roster as the proxy keeps it: an item of the user's private roster node
// (item id = the contact's bare JID), and its RFC 6121 rendering in roster results and pushes.
//
// Stored beyond what a legacy roster item shows:
// - pending-in and the request itself: RFC 6121 §3.1.3 makes the server redeliver an unanswered
//   request at every login, with its payload
// - approved: §3.4 pre-approval
// - listed: whether the contact is in the roster at all (a pending request alone is not)
// - undelivered: our request could not be put in the contact's inbox yet (retried at login)
// - event: the subscription presence that caused this write, so that every session of the user
//   (on any proxy instance) delivers it when it sees the roster node change
// - seen-sub / seen-auth: the nonce of the last inbox item applied from this contact, per slot, so
//   that an item read again is not applied twice. ejabberd 23.01 can leave an inbox item that its
//   owner can no longer retract (a retract racing another user's publish to the same node), and it
//   then comes back at every login. An entry whose contact was removed stays as a hidden tombstone
//   holding these two nonces.
import type { Element } from 'ltx';
import { canonicalXml, xml } from '../stream/xml.js';
import { NS_ROSTER } from '../xmpp/ns.js';
import { NO_STATE, type SubState, type Subscription } from './subscription-states.js';

export const NS_STORE = 'urn:xep207-proxy:roster:0';

export interface RosterEntry extends SubState {
  jid: string;
  name?: string;
  groups: string[];
  listed: boolean;
  undelivered: boolean;
  request?: Element;
  event?: Element;
  /** nonce of the last applied inbox item of each slot (subscribe/unsubscribe, subscribed/unsubscribed) */
  seenSub?: string;
  seenAuth?: string;
}

export function newEntry(jid: string): RosterEntry {
  return { jid, groups: [], listed: false, undelivered: false, ...NO_STATE };
}

/** A removed contact: nothing left but what keeps old inbox items from being applied again. */
export function tombstone(e: RosterEntry): RosterEntry {
  const t: RosterEntry = { ...newEntry(e.jid) };
  if (e.seenSub) t.seenSub = e.seenSub;
  if (e.seenAuth) t.seenAuth = e.seenAuth;
  return t;
}

/** Nothing worth keeping at all (the item can be retracted). */
export function isEmpty(e: RosterEntry): boolean {
  return !e.listed && e.subscription === 'none' && !e.pendingOut && !e.pendingIn && !e.approved && !e.seenSub && !e.seenAuth;
}

/** Does the client see it in its roster? */
export function isVisible(e: RosterEntry): boolean {
  return e.listed || e.subscription !== 'none' || e.pendingOut;
}

export function toStored(e: RosterEntry): Element {
  const attrs: Record<string, string> = { xmlns: NS_STORE, jid: e.jid, subscription: e.subscription };
  if (e.name !== undefined) attrs.name = e.name;
  if (e.pendingOut) attrs.ask = 'subscribe';
  if (e.pendingIn) attrs['pending-in'] = 'true';
  if (e.approved) attrs.approved = 'true';
  if (e.listed) attrs.listed = 'true';
  if (e.undelivered) attrs.undelivered = 'true';
  if (e.seenSub) attrs['seen-sub'] = e.seenSub;
  if (e.seenAuth) attrs['seen-auth'] = e.seenAuth;
  return xml(
    'contact',
    attrs,
    ...e.groups.map((g) => xml('group', null, g)),
    e.request ? xml('request', null, e.request) : null,
    e.event ? xml('event', null, e.event) : null,
  );
}

const SUBSCRIPTIONS = new Set(['none', 'to', 'from', 'both']);

function firstElement(el: Element | undefined): Element | undefined {
  return el?.children.find((c): c is Element => typeof c !== 'string');
}

export function fromStored(el: Element | undefined): RosterEntry | undefined {
  if (!el || el.name !== 'contact' || el.attrs.xmlns !== NS_STORE || !el.attrs.jid) return undefined;
  const sub = el.attrs.subscription as string;
  const e: RosterEntry = {
    jid: el.attrs.jid as string,
    groups: el.getChildren('group').map((g) => g.getText()),
    subscription: (SUBSCRIPTIONS.has(sub) ? sub : 'none') as Subscription,
    pendingOut: el.attrs.ask === 'subscribe',
    pendingIn: el.attrs['pending-in'] === 'true',
    approved: el.attrs.approved === 'true',
    listed: el.attrs.listed === 'true',
    undelivered: el.attrs.undelivered === 'true',
  };
  if (el.attrs.name !== undefined) e.name = el.attrs.name as string;
  if (el.attrs['seen-sub']) e.seenSub = el.attrs['seen-sub'] as string;
  if (el.attrs['seen-auth']) e.seenAuth = el.attrs['seen-auth'] as string;
  const request = firstElement(el.getChild('request'));
  if (request) e.request = request;
  const event = firstElement(el.getChild('event'));
  if (event) e.event = event;
  return e;
}

/** RFC 6121 §2.1.2 roster item. */
export function toRosterItem(e: RosterEntry): Element {
  const attrs: Record<string, string> = { jid: e.jid, subscription: e.subscription };
  if (e.name !== undefined && e.name !== '') attrs.name = e.name;
  if (e.pendingOut) attrs.ask = 'subscribe';
  if (e.approved) attrs.approved = 'true';
  return xml('item', attrs, ...e.groups.map((g) => xml('group', null, g)));
}

/** A roster push (RFC 6121 §2.1.6) of one item, or of its removal. */
export function rosterPush(to: string, id: string, item: Element): Element {
  return xml('iq', { type: 'set', id, to }, xml('query', { xmlns: NS_ROSTER }, item));
}

export function removalItem(jid: string): Element {
  return xml('item', { jid, subscription: 'remove' });
}

/** What a client sees of an entry (roster push only when this changes). */
export function visibleKey(e: RosterEntry | undefined): string {
  return e && isVisible(e) ? toRosterItem(e).toString() : '';
}

/** The whole stored form (writes that change nothing are skipped). */
export function storedKey(e: RosterEntry | undefined): string {
  return e ? canonicalXml(toStored(e)) : '';
}
