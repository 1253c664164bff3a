// XEP-0163 PEP for contacts on a roster-less backend. Who may read is the backend's job
// (pep-access.ts makes it enforce the roster); this rule does what a server's PEP service does for a
// contact's sessions, which the backend cannot (it knows no contacts, so it never notifies by caps):
//
//   +notify      each session's interests come from its XEP-0115 caps (caps.ts). A contact's
//                notification (the backend sends it to the bare-JID subscription the contact's
//                proxy set) reaches only the available sessions with `<node>+notify`, and only
//                while the roster says the user sees the contact's presence (subscription to/both)
//   last items   at initial presence, and when a contact becomes visible, the session gets the
//                last item of each node it has +notify for, of each contact it sees (§4.3.2)
//   own nodes    the backend notifies the owner's sessions (Prosody by their caps, which the proxy
//                puts on the backend leg's presence, presence.ts; ejabberd all of them, to the bare
//                JID): filtered by +notify like a contact's
//
// The client's publishes and node configurations on its own PEP service go through pep-access.ts,
// which turns `presence` into whitelist + members before the backend sees them.
import { clone, type Element } from 'ltx';
import { itemsOfResult, mentionsPubsubEvent } from '../pubsub/events.js';
import * as ps from '../pubsub/requests.js';
import { xml } from '../stream/xml.js';
import { NS_PUBSUB, NS_PUBSUB_EVENT, NS_PUBSUB_OWNER } from '../xmpp/ns.js';
import { StanzaError, errorReply } from '../xmpp/stanza-error.js';
import { accountOf, hasAccount, type Account } from './account.js';
import { CapsCache, capsOf } from './caps.js';
import { NODE_PEP, isClientNode, ownConfigGet, ownConfigure, ownDelete, ownPublish, reconcile } from './pep-access.js';
import { hasTo } from './subscription-states.js';
import type { Rule, RuleContext } from './types.js';
import type { RosterEntry } from './roster-item.js';

/** last-item reads in flight at once for one session (contacts x interests can be many) */
export const LAST_ITEM_PARALLEL = 8;

interface PepState {
  /** the +notify nodes of the client's current caps */
  interests: Promise<Set<string>>;
  /** the caps element they were learnt from */
  capsKey: string | undefined;
}

const KEY = 'pep';
const NONE: Promise<Set<string>> = Promise.resolve(new Set());

function stateOf(ctx: RuleContext): PepState {
  let s = ctx.state.get(KEY) as PepState | undefined;
  if (!s) ctx.state.set(KEY, (s = { interests: NONE, capsKey: undefined }));
  return s;
}

/** The session's interests (none until its client has sent caps: no state kept before that). */
function interestsOf(ctx: RuleContext): Promise<Set<string>> {
  return (ctx.state.get(KEY) as PepState | undefined)?.interests ?? NONE;
}

/** The last item of `node` of `contact`, as the notification a subscriber would have had. */
function lastItemEvent(contact: string, to: string, node: string, item: { id: string; payload: Element | undefined }): Element {
  return xml(
    'message',
    { from: contact, to, type: 'headline' },
    xml('event', { xmlns: NS_PUBSUB_EVENT }, xml('items', { node }, xml('item', { id: item.id }, item.payload ? clone(item.payload) : null))),
  );
}

/** Run `jobs` with at most `n` at a time. */
async function limited(jobs: Array<() => Promise<void>>, n: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
}

/** §4.3.2: the last item of every node in `nodes` of each of `contacts`, for an available session. */
async function sendLastItems(account: Account, contacts: string[], nodes: Set<string>): Promise<void> {
  const wanted = [...nodes].filter(isClientNode);
  const jobs = contacts.flatMap((contact) =>
    wanted.map((node) => async () => {
      const res = await account.ctx.request(ps.lastItems(contact, node, 1)).catch(() => undefined); // no such node, or not allowed
      const item = res ? itemsOfResult(res)[0] : undefined;
      if (item && account.available) account.ctx.toClient(lastItemEvent(contact, account.full, node, item));
    }),
  );
  await limited(jobs, LAST_ITEM_PARALLEL);
}

/** The services whose last items a session gets: its contacts, and its own where the backend does not send them. */
function visibleContacts(account: Account): string[] {
  const contacts = [...account.roster.values()].filter((e) => hasTo(e.subscription)).map((e) => e.jid);
  return account.profile.ownLastItemsAtLogin ? contacts : [account.bare, ...contacts];
}

/** Initial presence: the last items of every contact the user sees. */
export function pepOnAvailable(account: Account): void {
  void interestsOf(account.ctx).then((nodes) => sendLastItems(account, visibleContacts(account), nodes));
}

/** A contact became visible (its approval arrived): its last items. */
export function pepOnChange(account: Account, prev: RosterEntry | undefined, next: RosterEntry | undefined): void {
  if (!next || !hasTo(next.subscription) || (prev && hasTo(prev.subscription)) || !account.available) return;
  void interestsOf(account.ctx).then((nodes) => sendLastItems(account, [next.jid], nodes));
}

/** The client's broadcast presence: learn its interests when its caps change. */
function sawPresence(account: Account, caps: CapsCache, presence: Element): void {
  const c = capsOf(presence);
  const key = c?.toString();
  if (key === (account.ctx.state.get(KEY) as PepState | undefined)?.capsKey) return;
  const st = stateOf(account.ctx);
  st.capsKey = key;
  const before = st.interests;
  st.interests = caps.interests(account.ctx, c);
  if (!account.available) return; // initial presence: pepOnAvailable sends the last items
  // a session that gains +notify for a node gets its last items, as at initial presence
  void Promise.all([before, st.interests]).then(([old, now]) => {
    const added = new Set([...now].filter((n) => !old.has(n)));
    if (added.size > 0) return sendLastItems(account, visibleContacts(account), added);
  });
}

/** The node a pubsub event is about, and what kind of event it is. */
function eventNode(el: Element): { kind: string; node: string; jid?: string } | undefined {
  const ev = el.getChild('event', NS_PUBSUB_EVENT);
  const c = ev?.children.find((x): x is Element => typeof x !== 'string');
  const node = c?.attrs.node as string | undefined;
  if (!c || !node) return undefined;
  return { kind: c.name, node, ...(c.attrs.jid ? { jid: c.attrs.jid as string } : {}) };
}

/** Is `to` the user's own PEP service (no `to`, or the bare JID)? */
export function toOwnService(ctx: RuleContext, to: string | undefined): boolean {
  return to === undefined || to.toLowerCase() === ctx.bare;
}

export function pepRule(): Rule {
  const caps = new CapsCache();
  return {
    name: 'pep',
    sees: { client: ['presence', 'iq'], backend: ['message'] },

    onBound(ctx) {
      if (!hasAccount(ctx) || !accountOf(ctx).rosterLoaded) return;
      const account = accountOf(ctx);
      // in the background: nothing of the session waits for it
      void reconcile(account).catch((err: unknown) => {
        // a session that ended meanwhile is no failure: the next login does it
        if (!(err instanceof StanzaError && err.condition === 'remote-server-not-found')) ctx.log.warn({ err: String(err) }, 'PEP reconcile failed');
      });
    },

    fromClient(s, ctx) {
      if (!hasAccount(ctx)) return false;
      if (s.name === 'presence') {
        // observed, never claimed: the presence rule publishes it
        if (s.attrs.type === undefined && toOwnService(ctx, s.attrs.to)) sawPresence(accountOf(ctx), caps, s.el);
        return false;
      }
      if (s.name !== 'iq' || s.childName !== 'pubsub' || !toOwnService(ctx, s.attrs.to)) return false;
      const account = accountOf(ctx);
      const el = s.el;
      const pubsub = el.getChild('pubsub')!;
      const first = pubsub.children.find((c): c is Element => typeof c !== 'string');
      const node = first?.attrs.node as string | undefined;
      if (!first || !node || !isClientNode(node)) return false;
      let work: Promise<boolean> | undefined;
      if (s.childNs === NS_PUBSUB && s.attrs.type === 'set' && first.name === 'publish') work = ownPublish(account, el);
      else if (s.childNs === NS_PUBSUB && s.attrs.type === 'set' && first.name === 'create') work = ownConfigure(account, el, true);
      else if (s.childNs === NS_PUBSUB_OWNER && s.attrs.type === 'set' && first.name === 'configure') work = ownConfigure(account, el, false);
      else if (s.childNs === NS_PUBSUB_OWNER && s.attrs.type === 'get' && first.name === 'configure') work = ownConfigGet(account, el, node);
      else if (s.childNs === NS_PUBSUB_OWNER && s.attrs.type === 'set' && first.name === 'delete') work = ownDelete(account, el, node);
      if (!work) return false;
      return work.catch((err: unknown) => {
        ctx.log.warn({ node, err: String(err) }, 'PEP request failed');
        ctx.toClient(errorReply(el, err instanceof StanzaError ? err : new StanzaError('internal-server-error'), ctx.bare));
        return true;
      });
    },

    fromBackend(s, ctx) {
      if (s.name !== 'message' || !mentionsPubsubEvent(s) || !hasAccount(ctx)) return false;
      const from = s.attrs.from;
      if (!from || from.includes('/') || !from.includes('@')) return false; // not a user's PEP service
      const ev = eventNode(s.el);
      if (!ev) return false;
      const service = from.toLowerCase();
      if (!isClientNode(ev.node)) return service === ctx.bare && ev.node === NODE_PEP; // the registry is the proxy's; the other rules' nodes theirs
      // the subscriptions the node owner's proxy set for this user are bookkeeping, not the client's
      if (ev.kind === 'subscription') return ev.jid !== undefined && ev.jid.toLowerCase() === ctx.bare;
      // a subscription the client made itself, to its full JID, is the client's business
      const to = s.attrs.to;
      if (to !== undefined && to.includes('/')) return false;
      const account = accountOf(ctx);
      // the user's own nodes: the backend notifies the owner's sessions (ejabberd whatever their caps)
      const entry = account.entry(service);
      if (!account.available || (service !== ctx.bare && !(entry && hasTo(entry.subscription)))) return true;
      return interestsOf(ctx).then((nodes) => !nodes.has(ev.node));
    },
  };
}
