// XEP-0207 §4 and §8: presence subscription requests and their answers. The client's four
// subscription presences become pubsub operations and inbox items (subscription-ops.ts); what other
// users' proxies leave in the user's inbox is applied to the roster and delivered to the client. No
// subscription presence ever reaches the backend (ejabberd drops a session that sends one).
import type { Element } from 'ltx';
import { ANNOUNCE_PREFIX } from './chat-nodes.js';
import { eventOf, isAuthorizationRequest, itemsOfResult, mentionsPubsub } from '../pubsub/events.js';
import * as ps from '../pubsub/requests.js';
import { xml } from '../stream/xml.js';
import { parseJid } from '../xmpp/jid.js';
import { NS_PUBSUB_EVENT } from '../xmpp/ns.js';
import { StanzaError, errorReply } from '../xmpp/stanza-error.js';
import { NODE_INBOX, NODE_PRESENCE, accountOf, hasAccount, type Account } from './account.js';
import { presenceFromItem } from './presence.js';
import { receiveSubscription, retryUndelivered, sendSubscription } from './subscription-ops.js';
import { isSubscriptionType } from './subscription-states.js';
import type { Rule, RuleContext } from './types.js';
import type { RosterEntry } from './roster-item.js';

/**
 * Retries of requests whose contact had no inbox yet (never logged in through a proxy): soon at
 * first (the contact may be logging in right now), then less and less often.
 */
export const RETRY_FIRST_MS = 2_000;
export const RETRY_MAX_MS = 60_000;

const RETRY_KEY = 'subscription-retry';

interface Retry {
  timer: NodeJS.Timeout;
  delay: number;
}

/** While some request has no inbox to go to, try again (no timer otherwise). */
function scheduleRetry(ctx: RuleContext, account: Account, delay = RETRY_FIRST_MS): void {
  if (ctx.state.has(RETRY_KEY)) return;
  if (![...account.roster.values()].some((e) => e.pendingOut && e.undelivered)) return;
  const timer = setTimeout(() => {
    account
      .exclusive(() => retryUndelivered(account))
      .catch(() => undefined)
      .finally(() => {
        ctx.state.delete(RETRY_KEY);
        scheduleRetry(ctx, account, Math.min(delay * 2, RETRY_MAX_MS));
      });
  }, delay);
  timer.unref();
  ctx.state.set(RETRY_KEY, { timer, delay } satisfies Retry);
}

/** Deliver a stored subscription presence to the client (addressed to its full JID). */
function deliver(account: Account, presence: Element): void {
  account.ctx.toClient(presenceFromItem(presence, account.full));
}

/** Read the inbox, apply each item, retract it. */
async function drainInbox(account: Account, items: Array<{ id: string; publisher?: string; payload: Element | undefined }>): Promise<void> {
  for (const item of items) {
    if (item.id.startsWith(ANNOUNCE_PREFIX)) continue; // a chat node's announcement: chat.ts's
    try {
      await account.exclusive(() => receiveSubscription(account, item));
    } catch (err) {
      account.ctx.log.warn({ err: String(err), item: item.id }, 'inbox item failed');
    }
    await account.ctx.request(ps.retract(undefined, NODE_INBOX, item.id)).catch(() => undefined);
  }
}

/** Every session delivers what any session stored as the event of a roster write. */
export function subscriptionOnChange(account: Account, _prev: RosterEntry | undefined, next: RosterEntry | undefined): void {
  if (next?.event && account.available) deliver(account, next.event);
  if (next?.undelivered) scheduleRetry(account.ctx, account);
}

/** RFC 6121 §3.1.3: an unanswered request is delivered again at each initial presence. */
export function subscriptionOnAvailable(account: Account): void {
  for (const e of account.roster.values()) if (e.pendingIn && e.request) deliver(account, e.request);
}

export const subscriptionRule: Rule = {
  name: 'subscription',
  sees: { client: ['presence'], backend: ['message'] },
  // RFC 6121 §3.4: pre-approvals are kept (the roster entry's approved flag)
  features: [xml('sub', { xmlns: 'urn:xmpp:features:pre-approval' })],

  async onBound(ctx) {
    if (!hasAccount(ctx)) return;
    const account = accountOf(ctx);
    if (!account.rosterLoaded) return;
    // what arrived while the user was offline
    const read = account.takeLoginRead(NODE_INBOX);
    const res = read === 'none' ? undefined : (read ?? (await ctx.request(ps.items(undefined, NODE_INBOX)).catch(() => undefined)));
    if (res) await drainInbox(account, itemsOfResult(res));
    await account.exclusive(() => retryUndelivered(account)).catch(() => undefined);
    scheduleRetry(ctx, account);
  },

  onClose(ctx) {
    clearTimeout((ctx.state.get(RETRY_KEY) as Retry | undefined)?.timer);
    ctx.state.delete(RETRY_KEY);
  },

  fromClient(s, ctx) {
    if (s.name !== 'presence' || !isSubscriptionType(s.attrs.type)) return false;
    const type = s.attrs.type;
    const el = s.el;
    const fail = (e: StanzaError) => {
      ctx.toClient(errorReply(el, e, ctx.domain));
      return true;
    };
    const to = parseJid(s.attrs.to);
    if (!to) return fail(new StanzaError('jid-malformed', s.attrs.to ? 'malformed JID' : 'a subscription presence needs a to address'));
    if (!hasAccount(ctx) || !accountOf(ctx).rosterLoaded) return fail(new StanzaError('internal-server-error', 'subscriptions are unavailable'));
    const account = accountOf(ctx);
    const contact = to.bare().toString();
    if (contact === account.bare) return true; // subscriptions to oneself mean nothing: ignored
    const extra = el.children.filter((c): c is Element => typeof c !== 'string');
    return account
      .exclusive(() => sendSubscription(account, contact, type, extra))
      .then(
        () => true,
        (err: unknown) => {
          if (!(err instanceof StanzaError)) ctx.log.error({ err }, 'subscription failed');
          const e = err instanceof StanzaError ? err : new StanzaError('internal-server-error');
          // the error comes from the contact's side, as a legacy server would report it
          const original = xml('presence', { ...(el.attrs as Record<string, string>), to: s.attrs.to!, from: account.full });
          ctx.toClient(errorReply(original, e, contact));
          return true;
        },
      );
  },

  fromBackend(s, ctx) {
    // a cheap look at the bytes first: only pubsub events and forms concern this rule
    if (s.name !== 'message' || !mentionsPubsub(s) || !hasAccount(ctx)) return false;
    const account = accountOf(ctx);
    const el = s.el;
    const own = s.attrs.from === account.bare;
    // ejabberd's "authorize" request form to the owner: the proxy answers through the inbox instead
    if (own && isAuthorizationRequest(el, NODE_PRESENCE)) return true;
    const event = el.getChild('event', NS_PUBSUB_EVENT);
    // ejabberd tells a subscriber of subscription state changes: the inbox carries them already
    if (event?.getChild('subscription')?.attrs.node === NODE_PRESENCE) return true;
    const ev = own ? eventOf(s) : undefined;
    if (!ev || ev.node !== NODE_INBOX) return false;
    account.noteExists(NODE_INBOX); // made by another session of the user (inbox-lazy.ts)
    if (ev.items.length === 0) return true; // retractions of processed items
    return drainInbox(account, ev.items).then(() => true);
  },
};
