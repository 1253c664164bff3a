// XEP-0207 §4 and §8 on the backend: what each subscription presence does to pubsub, on the side of
// the user who sends it (outbound) and of the user it is meant for (inbound, from the inbox).
//
//   subscribe     roster: ask; pubsub: subscribe to the contact's `presence` node where the access
//                 model is "authorize" (the subscription waits as 'pending', XEP-0207 listing 9);
//                 the request itself goes to the contact's inbox, so that it is not lost while the
//                 contact is offline (ejabberd only tells an *online* owner, Prosody never does)
//   subscribed    owner approves: the contact becomes a subscriber of our `presence` node (XEP-0060
//                 §8.8.2 subscription modification; on a whitelist node first a 'member'). The spec's
//                 form submission (listing 11) fails on ejabberd's PEP: see fixtures/README.md
//   unsubscribed  owner denies/revokes: subscription (and membership) removed
//   unsubscribe   subscriber cancels: it unsubscribes itself
// The four types also travel to the other user's inbox, where that user's proxy applies them to
// its roster (RFC 6121 Appendix A) and delivers them to the client.
import { randomToken } from '../xmpp/random.js';
import { clone, type Element } from 'ltx';
import * as ps from '../pubsub/requests.js';
import type { PublishedItem } from '../pubsub/events.js';
import { xml } from '../stream/xml.js';
import { NS_CLIENT } from '../xmpp/ns.js';
import { bareOf } from '../xmpp/jid.js';
import { StanzaError } from '../xmpp/stanza-error.js';
import { NODE_INBOX, NODE_PRESENCE, type Account } from './account.js';
import { leaveInChatNode } from './inbox-lazy.js';
import { grantNodes, revokeNodes } from './pep-access.js';
import { newEntry, type RosterEntry } from './roster-item.js';
import { hasFrom, hasTo, inbound, isSubscriptionType, outbound, type SubscriptionType } from './subscription-states.js';

/** Marks each inbox item with a nonce (see roster-item.ts, seen-sub / seen-auth). */
export const NS_INBOX = 'urn:xep207-proxy:inbox:0';

/** Inbox item id: one slot per sender and direction, the latest word wins. */
export function inboxItemId(type: SubscriptionType, from: string): string {
  return (type === 'subscribe' || type === 'unsubscribe' ? 'sub:' : 'auth:') + from;
}

export type InboxResult = 'ok' | 'not-enrolled' | StanzaError;

/**
 * Leave a subscription presence in the contact's inbox. 'not-enrolled': the contact has no inbox yet
 * (never logged in through a proxy, or no such account: the backend cannot tell which), and where
 * the profile makes inboxes lazily, the chat service would not take it either.
 */
export async function toInbox(account: Account, contact: string, type: SubscriptionType, extra: Element[]): Promise<InboxResult> {
  const presence = xml(
    'presence',
    { xmlns: NS_CLIENT, type, from: account.bare, to: contact },
    ...extra.map(clone),
    xml('inbox', { xmlns: NS_INBOX, nonce: randomToken(9) }),
  );
  const id = inboxItemId(type, account.bare);
  const publish = () => account.ctx.request(ps.publish(contact, NODE_INBOX, id, presence));
  try {
    await publish();
    return 'ok';
  } catch (err) {
    const e = err instanceof StanzaError ? err : new StanzaError('internal-server-error');
    if (!account.profile.missingNodeConditions.includes(e.condition)) return e;
    if (!account.profile.lazyInbox) return 'not-enrolled';
  }
  // the contact's proxy makes its inbox when the first request comes (inbox-lazy.ts)
  if (!(await leaveInChatNode(account, contact, id, presence))) return 'not-enrolled';
  // made in the meantime, and the chat node read before our item was in it? Then the inbox has it
  // too (the same nonce: applied once)
  await publish().catch(() => undefined);
  return 'ok';
}

/** Make `contact` a subscriber of our presence node. */
async function grant(account: Account, contact: string): Promise<void> {
  if (account.profile.approveNeedsAffiliation) await account.ctx.request(ps.setAffiliations(NODE_PRESENCE, [[contact, 'member']]));
  await account.ctx.request(ps.setSubscriptions(NODE_PRESENCE, [[contact, 'subscribed']]));
  await grantNodes(account, contact); // XEP-0163: the PEP nodes readable by contacts follow
}

/** Take `contact`'s subscription (and membership) to our presence node away. */
async function revoke(account: Account, contact: string): Promise<void> {
  await ignoreErrors(account.ctx.request(ps.setSubscriptions(NODE_PRESENCE, [[contact, 'none']])));
  if (account.profile.approveNeedsAffiliation) await ignoreErrors(account.ctx.request(ps.setAffiliations(NODE_PRESENCE, [[contact, 'none']])));
  await ignoreErrors(revokeNodes(account, contact));
}

async function ignoreErrors(p: Promise<unknown>): Promise<void> {
  await p.catch(() => undefined);
}

/**
 * The user sends a subscription presence of `type` to `contact` (bare JID); `extra` are the
 * presence's children (status, nick, ...), carried to the contact. Throws a StanzaError the client
 * should get as a presence error.
 */
export async function sendSubscription(account: Account, contact: string, type: SubscriptionType, extra: Element[]): Promise<void> {
  const prev = account.entry(contact) ?? newEntry(contact);
  const { state, route } = outbound(prev, type);
  const next: RosterEntry = { ...prev, ...state };
  if (type === 'subscribe' || (type === 'subscribed' && (route || state.approved))) next.listed = true;
  if (!next.pendingIn) delete next.request;
  if (type === 'unsubscribe') next.undelivered = false;
  await account.save(next);

  switch (type) {
    case 'subscribe':
      if (account.profile.subscribeOnRequest && !hasTo(prev.subscription)) {
        await ignoreErrors(account.ctx.request(ps.subscribe(contact, NODE_PRESENCE, account.bare)));
      }
      break;
    case 'subscribed':
      if (route) await grant(account, contact);
      break;
    case 'unsubscribed':
      if (route) await revoke(account, contact);
      break;
    case 'unsubscribe':
      await ignoreErrors(account.ctx.request(ps.unsubscribe(contact, NODE_PRESENCE, account.bare)));
      break;
  }
  if (!route) return;
  const delivered = await toInbox(account, contact, type, extra);
  if (delivered instanceof StanzaError) {
    if (type === 'subscribe') await account.save({ ...next, pendingOut: prev.pendingOut });
    // what is not a missing node is an unreachable service (another domain, no s2s, ...)
    throw new StanzaError('remote-server-not-found', `cannot reach ${contact}: ${delivered.condition}`);
  }
  if (type === 'subscribe') {
    const undelivered = delivered === 'not-enrolled';
    if (undelivered) account.ctx.log.info({ contact }, 'contact has no inbox yet: request kept and retried');
    if (undelivered !== next.undelivered) await account.save({ ...account.entry(contact)!, undelivered });
  }
}

/** Retry requests that could not be put in a contact's inbox (the contact has since logged in?). */
export async function retryUndelivered(account: Account): Promise<void> {
  for (const e of [...account.roster.values()]) {
    if (!e.pendingOut || !e.undelivered) continue;
    if (account.profile.subscribeOnRequest) await ignoreErrors(account.ctx.request(ps.subscribe(e.jid, NODE_PRESENCE, account.bare)));
    const r = await toInbox(account, e.jid, 'subscribe', []);
    if (r === 'ok') {
      const cur = account.entry(e.jid);
      if (cur) await account.save({ ...cur, undelivered: false });
    }
  }
}

/**
 * A subscription presence found in our inbox (notification or login): check who wrote it, apply it
 * to the roster (RFC 6121 A.3), do the pubsub side, and store it as the entry's event so that every
 * session of the user delivers it. Returns false if the item is not a valid inbox item.
 */
export async function receiveSubscription(account: Account, item: PublishedItem): Promise<boolean> {
  const p = item.payload;
  if (!p || p.name !== 'presence') return false;
  const type = p.attrs.type as string | undefined;
  const fromAttr = p.attrs.from as string | undefined;
  if (!isSubscriptionType(type) || !fromAttr) return false;
  const from = bareOf(fromAttr).toLowerCase();
  // the item id names the sender; the backend's publisher stamp (where it gives one) must agree.
  // Not chat-nodes.ts's writtenBy, which also refuses an unstamped item: the inbox is the user's own
  // PEP node, which nobody else can create, and one made before the profile's stamp config has none.
  if (item.id !== inboxItemId(type, from)) return false;
  if (item.publisher && bareOf(item.publisher).toLowerCase() !== from) {
    account.ctx.log.warn({ publisher: item.publisher, from }, 'inbox item with a forged sender ignored');
    return false;
  }
  if (from === account.bare) return false;

  const prev = account.entry(from) ?? newEntry(from);
  const slot = type === 'subscribe' || type === 'unsubscribe' ? 'seenSub' : 'seenAuth';
  const nonce = p.getChild('inbox', NS_INBOX)?.attrs.nonce as string | undefined;
  if (nonce !== undefined && prev[slot] === nonce) return true; // applied before: an item read again
  const r = inbound(prev, type);
  const next: RosterEntry = { ...prev, ...r.state };
  if (nonce !== undefined) next[slot] = nonce;
  const children = p.children.filter((c): c is Element => typeof c !== 'string' && !(c.name === 'inbox' && c.attrs.xmlns === NS_INBOX)).map(clone);
  const event = r.deliver ? xml('presence', { xmlns: NS_CLIENT, type, from }, ...children) : undefined;
  if (type === 'subscribe' && r.deliver) next.request = xml('presence', { xmlns: NS_CLIENT, type, from }, ...children.map(clone));
  if (!next.pendingIn) delete next.request;
  if (r.reply === 'subscribed' && !hasFrom(prev.subscription)) next.listed = true; // pre-approved: now a subscriber

  if (r.reply === 'subscribed') {
    await grant(account, from);
    await account.save(next);
    await toInbox(account, from, 'subscribed', []);
    return true;
  }
  if (type === 'unsubscribe' && r.deliver && hasFrom(prev.subscription)) await revoke(account, from);
  if (type === 'unsubscribed' && r.deliver) await ignoreErrors(account.ctx.request(ps.unsubscribe(from, NODE_PRESENCE, account.bare)));
  await account.save(next, event);
  return true;
}
