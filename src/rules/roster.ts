// XEP-0207 §4 rosters: "the roster is simply a list of the entities that are subscribed to a user's
// presence". The legacy roster (RFC 6121 §2) is answered from the user's private roster node: get
// from the session's copy, set and remove written to the node, and every change of the node (from any
// session of the user, on any proxy instance) pushed to each interested resource.
// No roster iq ever reaches the backend, and roster versioning is not offered.
import type { Element } from 'ltx';
import { eventOf } from '../pubsub/events.js';
import { xml } from '../stream/xml.js';
import { parseJid } from '../xmpp/jid.js';
import { NS_ROSTER } from '../xmpp/ns.js';
import { StanzaError, errorReply } from '../xmpp/stanza-error.js';
import { NODE_ROSTER, accountOf, hasAccount, type Account } from './account.js';
import { fromStored, isVisible, newEntry, removalItem, rosterPush, toRosterItem, visibleKey, type RosterEntry } from './roster-item.js';
import { sendSubscription } from './subscription-ops.js';
import { hasFrom, hasTo } from './subscription-states.js';
import type { Rule, RuleContext } from './types.js';

const MAX_NAME = 1023;

function result(to: string, id: string | undefined, ...children: Element[]): Element {
  return xml('iq', { type: 'result', to, ...(id ? { id } : {}) }, ...children);
}

/** Answer a roster get: every visible entry, no 'ver' (versioning is not offered). */
function rosterResult(account: Account, id: string | undefined): Element {
  const items = [...account.roster.values()].filter(isVisible).map(toRosterItem);
  return result(account.full, id, xml('query', { xmlns: NS_ROSTER }, ...items));
}

/** RFC 6121 §2.3.3 checks of a roster set; returns the item or throws the stanza error. */
function checkSet(query: Element): Element {
  const items = query.getChildren('item');
  if (items.length !== 1) throw new StanzaError('bad-request', 'a roster set carries exactly one item');
  const item = items[0]!;
  const groups = item.getChildren('group').map((g) => g.getText());
  if (new Set(groups).size !== groups.length) throw new StanzaError('bad-request', 'duplicate group');
  if (groups.some((g) => g.trim() === '' || g.length > MAX_NAME)) throw new StanzaError('not-acceptable', 'empty or too long group name');
  const name = item.attrs.name as string | undefined;
  if (name !== undefined && name.length > MAX_NAME) throw new StanzaError('not-acceptable', 'name too long');
  return item;
}

async function rosterSet(account: Account, query: Element): Promise<void> {
  const item = checkSet(query);
  const jid = parseJid(item.attrs.jid as string | undefined);
  if (!jid) throw new StanzaError('jid-malformed', 'bad jid in roster item');
  const contact = jid.bare().toString();
  if (item.attrs.subscription === 'remove') {
    await removeContact(account, contact);
    return;
  }
  const prev = account.entry(contact) ?? newEntry(contact);
  const next = { ...prev, listed: true, groups: item.getChildren('group').map((g) => g.getText()) };
  const name = item.attrs.name as string | undefined;
  if (name !== undefined) next.name = name;
  else delete next.name;
  // RFC 6121 §2.1.2.5: 'subscription' (other than remove) and 'ask' in a set are ignored
  await account.save(next);
}

/** RFC 6121 §2.5.2: removing a contact cancels both subscription directions, then the item. */
async function removeContact(account: Account, contact: string): Promise<void> {
  const e = account.entry(contact);
  if (!e || !isVisible(e) && !e.pendingIn) throw new StanzaError('item-not-found', 'no such roster item');
  if (hasTo(e.subscription) || e.pendingOut) await sendSubscription(account, contact, 'unsubscribe', []).catch(() => undefined);
  const now = account.entry(contact) ?? e;
  if (hasFrom(now.subscription) || now.pendingIn) await sendSubscription(account, contact, 'unsubscribed', []).catch(() => undefined);
  await account.remove(contact);
}

/** Our roster pushes' ids: the client's answers to them are ours, never the backend's. */
function pushPrefix(ctx: RuleContext): string {
  return `push-${ctx.sessionId}-`;
}

/** A change the client can see goes to it as a roster push, if it asked for the roster. */
export function rosterOnChange(account: Account, prev: RosterEntry | undefined, next: RosterEntry | undefined): void {
  if (!account.interested || visibleKey(prev) === visibleKey(next)) return;
  const item = next && isVisible(next) ? toRosterItem(next) : removalItem((prev ?? next)!.jid);
  account.ctx.toClient(rosterPush(account.full, pushPrefix(account.ctx) + ++account.pushSeq, item));
}

export const rosterRule: Rule = {
  name: 'roster',
  sees: { client: ['iq'], backend: ['message'] },

  fromClient(s, ctx) {
    if (s.name !== 'iq') return false;
    // the client's answers to our pushes
    if ((s.attrs.type === 'result' || s.attrs.type === 'error') && s.attrs.id?.startsWith(pushPrefix(ctx))) return true;
    if (!s.childIs('query', NS_ROSTER)) return false;
    const el = s.el;
    const to = s.attrs.to;
    if (to !== undefined && to.toLowerCase() !== ctx.bare) {
      ctx.toClient(errorReply(el, new StanzaError('forbidden', "not the user's roster"), ctx.domain));
      return true;
    }
    if (!hasAccount(ctx) || !accountOf(ctx).rosterLoaded) {
      ctx.toClient(errorReply(el, new StanzaError('internal-server-error', 'the roster is unavailable'), ctx.domain));
      return true;
    }
    const account = accountOf(ctx);
    const type = s.attrs.type;
    if (type === 'get') {
      account.interested = true;
      ctx.toClient(rosterResult(account, s.attrs.id));
      return true;
    }
    if (type !== 'set') {
      ctx.toClient(errorReply(el, new StanzaError('bad-request'), ctx.domain));
      return true;
    }
    return account
      .exclusive(() => rosterSet(account, el.getChild('query')!))
      .then(
        () => ctx.toClient(result(account.full, s.attrs.id)),
        (err: unknown) => {
          const e = err instanceof StanzaError ? err : new StanzaError('internal-server-error');
          if (!(err instanceof StanzaError)) ctx.log.error({ err }, 'roster set failed');
          ctx.toClient(errorReply(el, e, ctx.domain));
        },
      )
      .then(() => true);
  },

  fromBackend(s, ctx) {
    if (s.attrs.from !== ctx.bare || !hasAccount(ctx)) return false;
    const ev = eventOf(s);
    if (!ev || ev.node !== NODE_ROSTER) return false;
    const account = accountOf(ctx);
    for (const item of ev.items) {
      const e = fromStored(item.payload);
      if (e && e.jid === item.id) account.stored(e.jid, e);
    }
    for (const id of ev.retracts) account.stored(id, undefined);
    return true;
  },
};
