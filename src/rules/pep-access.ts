// Who may read a user's PEP nodes (XEP-0163 §4, access model `presence`) on a backend without a
// roster. `presence` there means "nobody but the owner" (the backend knows no contacts), so the proxy
// makes the backend enforce what a server with a roster would:
//
//   a node the client asks `presence` for   is `whitelist` on the backend, with exactly the contacts
//                                           that have a subscription from/both in the proxy's roster
//                                           as members, each of them also subscribed (bare JID) so
//                                           that the backend notifies them (pep.ts filters by +notify)
//   an `open` node                          stays open; the same contacts are subscribed (and members,
//                                           which on an open node changes nothing but lets the proxy
//                                           list them: ejabberd cannot list a PEP node's subscriptions)
//   `whitelist`, `authorize`, any other     untouched: owner-only stays owner-only (bookmarks, private
//                                           storage, ...)
//
// Which nodes are `presence` nodes is remembered in the user's private node `xep207-proxy/pep`
// (item id = node, payload the access model the client asked), because on the backend a
// `presence` node and a genuine `whitelist` one look alike. Every proxy instance reads it fresh when
// it needs it, and the membership follows every subscription change (subscription-ops.ts calls
// grantNodes/revokeNodes where it grants or revokes the `presence` node), and is checked against the
// roster at each login (reconcile), so that a change made while a node was being created is not lost.
import { clone, type Element } from 'ltx';
import { formFields, submitForm, FORM_NODE_CONFIG, type Fields } from '../pubsub/forms.js';
import { itemsOfResult } from '../pubsub/events.js';
import * as ps from '../pubsub/requests.js';
import { xml } from '../stream/xml.js';
import { bareOf } from '../xmpp/jid.js';
import { NS_DATA, NS_PUBSUB, NS_PUBSUB_OWNER } from '../xmpp/ns.js';
import { StanzaError, errorReply } from '../xmpp/stanza-error.js';
import { NODE_PRESENCE, type Account } from './account.js';
import { isOwnNode } from './own-nodes.js';
import { retrying } from './retry.js';
import { hasFrom } from './subscription-states.js';
import type { RuleContext } from './types.js';

export const NODE_PEP = 'xep207-proxy/pep';
export const NS_PEP = 'urn:xep207-proxy:pep:0';
const NS_PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors';
const ACCESS = 'pubsub#access_model';

/** How contacts see a node: `presence` (emulated with whitelist + members) or `open`. */
export type Access = 'presence' | 'open';

/** XEP-0163 §4.1: a PEP node created without an access model is `presence`. */
const DEFAULT_ACCESS = 'presence';

/** A user's PEP node the proxy may manage: not the proxy's own nodes. */
export function isClientNode(node: string): boolean {
  return node !== NODE_PRESENCE && !isOwnNode(node);
}

/**
 * PEP nodes that a user with any PEP data has one of: avatar metadata (XEP-0084), nickname
 * (XEP-0172), OMEMO device lists (XEP-0384, both namespaces; bundles come with them), vCard4
 * (XEP-0292). Their presence decides whether the adoption lists the user's nodes (adopt).
 */
const WELL_KNOWN = ['urn:xmpp:avatar:metadata', 'http://jabber.org/protocol/nick', 'eu.siacs.conversations.axolotl.devicelist', 'urn:xmpp:omemo:2:devices', 'urn:xmpp:vcard4'];

/** Node configuration the proxy adds to every node it makes readable: contacts hear of removals too. */
const NOTIFY_ALL: Fields = { 'pubsub#notify_retract': '1', 'pubsub#notify_delete': '1' };

function asAccess(model: string | undefined): Access | undefined {
  return model === 'presence' || model === 'open' ? model : undefined;
}

// ---- the registry ------------------------------------------------------------------------------

function accessOfItem(payload: Element | undefined): Access | undefined {
  return payload?.name === 'node' && payload.attrs.xmlns === NS_PEP ? asAccess(payload.attrs.access as string | undefined) : undefined;
}

/** A missing registry node (nothing registered yet): item-not-found on both backends. */
function missing(err: unknown): boolean {
  return err instanceof StanzaError && err.condition === 'item-not-found';
}

/** Every registered node and its access (from `read`, the registry's items, if given). */
export async function registry(account: Account, read?: Element | 'none'): Promise<Map<string, Access>> {
  const out = new Map<string, Access>();
  if (read === 'none') return out;
  const res = read ?? await account.ctx.request(ps.items(undefined, NODE_PEP)).catch((err: unknown) => {
    if (missing(err)) return undefined;
    throw err;
  });
  for (const item of res ? itemsOfResult(res) : []) {
    const a = accessOfItem(item.payload);
    if (a && isClientNode(item.id)) out.set(item.id, a);
  }
  return out;
}

async function registered(account: Account, node: string): Promise<Access | undefined> {
  const res = await account.ctx.request(ps.itemById(undefined, NODE_PEP, node)).catch((err: unknown) => {
    if (missing(err)) return undefined;
    throw err;
  });
  return res ? accessOfItem(itemsOfResult(res).find((i) => i.id === node)?.payload) : undefined;
}

async function record(account: Account, node: string, access: Access, adopting = false): Promise<void> {
  if (!adopting) await adopted(account);
  await account.made(NODE_PEP);
  await account.ctx.request(ps.publish(undefined, NODE_PEP, node, xml('node', { xmlns: NS_PEP, access }), { [ACCESS]: 'whitelist' }));
}

async function unrecord(account: Account, node: string): Promise<void> {
  await account.ctx.request(ps.retract(undefined, NODE_PEP, node)).catch(() => undefined);
}

// ---- membership --------------------------------------------------------------------------------

/** The contacts that may see the user's presence (RFC 6121: subscription from or both). */
function audience(account: Account): Set<string> {
  return new Set([...account.roster.values()].filter((e) => hasFrom(e.subscription)).map((e) => e.jid));
}

async function add(account: Account, node: string, jids: string[]): Promise<void> {
  if (jids.length === 0) return;
  // the affiliation first: a whitelist node takes only a member's subscription
  await account.ctx.request(ps.setAffiliations(node, jids.map((j) => [j, 'member'])));
  await account.ctx.request(ps.setSubscriptions(node, jids.map((j) => [j, 'subscribed'])));
}

async function drop(account: Account, node: string, jids: string[]): Promise<void> {
  if (jids.length === 0) return;
  // the subscription first: Prosody lets a subscriber read until its affiliation is gone too
  await account.ctx.request(ps.setSubscriptions(node, jids.map((j) => [j, 'none']))).catch(() => undefined);
  await account.ctx.request(ps.setAffiliations(node, jids.map((j) => [j, 'none'])));
}

/** Make the node's members exactly `want` (default: the roster's audience). */
async function sync(account: Account, node: string, want = audience(account)): Promise<void> {
  const res = await account.ctx.request(ps.getAffiliations(node));
  const have = new Set(
    res.getChild('pubsub', NS_PUBSUB_OWNER)?.getChild('affiliations')?.getChildren('affiliation')
      .filter((a) => a.attrs.affiliation === 'member')
      .map((a) => bareOf(a.attrs.jid as string).toLowerCase()) ?? [],
  );
  await add(account, node, [...want].filter((j) => !have.has(j)));
  await drop(account, node, [...have].filter((j) => !want.has(j)));
}

async function eachNode(account: Account, what: string, fn: (node: string) => Promise<void>): Promise<void> {
  const nodes = await registry(account).catch((err: unknown) => {
    account.ctx.log.warn({ err: String(err) }, `PEP ${what}: registry unreadable (the next login reconciles)`);
    return new Map<string, Access>();
  });
  for (const node of nodes.keys()) {
    await fn(node).catch((err: unknown) => account.ctx.log.warn({ node, err: String(err) }, `PEP ${what} failed`));
  }
}

/** `contact` may now see the user's presence: it may read (and hears of) every readable node. */
export async function grantNodes(account: Account, contact: string): Promise<void> {
  await adopted(account);
  await eachNode(account, 'grant', (node) => add(account, node, [contact]));
}

/** `contact` may no longer see the user's presence: nothing of the `presence` nodes either. */
export function revokeNodes(account: Account, contact: string): Promise<void> {
  return eachNode(account, 'revoke', (node) => drop(account, node, [contact]));
}

/**
 * At login: each registered node's members are set to the roster's audience, registered nodes that
 * are gone are forgotten. Nodes made before the proxy was in front of the backend are adopted
 * before the registry's first write (`adopted`), not here.
 */
export async function reconcile(account: Account): Promise<void> {
  // what the login read, if it did: none when the login found the registry missing (LAZY). Synced by
  // name: ejabberd answers a listing (disco#items of the user) by scanning every PEP node it holds
  const nodes = await registry(account, account.takeLoginRead(NODE_PEP));
  for (const node of nodes.keys()) {
    await sync(account, node).catch(async (err: unknown) => {
      if (missing(err)) await unrecord(account, node);
      else account.ctx.log.warn({ node, err: String(err) }, 'PEP node reconcile failed');
    });
  }
}

/** Per session: the adoption in progress or done (while the registry is missing). */
const adoptions = new WeakMap<Account, Promise<void>>();

/**
 * Before the registry's first write, and before a grant while there is none: the user's PEP nodes
 * made before the proxy was in front of the backend are classified from their configuration and
 * made readable (once per session; `preexisting` finds them). Until then they are owner-only,
 * which is what they are to a user without contacts: a user has none before its first grant, which
 * is why this need not run at the first login (a request or five each, bench (e)). A registry that
 * exists was made after it.
 */
function adopted(account: Account): Promise<void> {
  if (!account.lacks(NODE_PEP)) return Promise.resolve();
  let p = adoptions.get(account);
  if (!p) {
    p = adopt(account).catch((err: unknown) => {
      adoptions.delete(account); // tried again before the next write
      account.ctx.log.warn({ err: String(err) }, 'PEP adoption failed');
    });
    adoptions.set(account, p);
  }
  return p;
}

/** The adoption: each of the user's nodes made before the proxy is classified from its configuration. */
async function adopt(account: Account): Promise<void> {
  const existing = await preexisting(account);
  for (const node of existing ?? []) {
    try {
      const access = asAccess(await configuredModel(account, node));
      if (access) await makeReadable(account, node, access, true);
    } catch (err) {
      account.ctx.log.warn({ node, err: String(err) }, 'PEP node adoption failed');
    }
  }
}

/**
 * The user's PEP nodes made before the proxy (undefined: none, or no sign of any). A listing
 * (disco#items) costs ejabberd a scan of every PEP node it holds (25-40 ms of its CPU at 60-100k
 * nodes): where the backend names them cheaply, the user's own affiliations do (ejabberd: a look-up
 * by the user's key); elsewhere the listing is made only for a user who has PEP data at all, which
 * shows in the nodes every client that has any publishes: their last items are read by name (a
 * configuration read would make ejabberd build a whole form). A user with none of them (a new
 * account, as a rule) is not listed.
 */
async function preexisting(account: Account): Promise<Set<string> | undefined> {
  if (account.profile.ownNodesByAffiliations) {
    const res = await account.ctx.request(ps.myAffiliations()).catch(() => undefined);
    if (res) {
      const owned = res.getChild('pubsub')?.getChild('affiliations')?.getChildren('affiliation')
        .filter((a) => a.attrs.affiliation === 'owner')
        .map((a) => a.attrs.node as string)
        .filter((n) => n && isClientNode(n)) ?? [];
      return owned.length > 0 ? new Set(owned) : undefined;
    }
    // not answered: as on any other backend
  }
  const known = await Promise.all(WELL_KNOWN.map((node) => account.ctx.request(ps.lastItems(undefined, node, 1)).then(() => true, (err: unknown) => !missing(err))));
  if (!known.includes(true)) return undefined;
  const res = await account.ctx.request(ps.discoItems(account.bare));
  return new Set(res.getChild('query')?.getChildren('item').map((i) => i.attrs.node as string).filter((n) => n && isClientNode(n)) ?? []);
}

// ---- what a client asks of its own nodes -------------------------------------------------------

/** The node's access model on the backend, or undefined if there is no such node. */
async function configuredModel(account: Account, node: string): Promise<string | undefined> {
  const res = await account.ctx.request(ps.getConfig(node)).catch((err: unknown) => {
    if (missing(err)) return undefined;
    throw err;
  });
  const x = res?.getChild('pubsub', NS_PUBSUB_OWNER)?.getChild('configure')?.getChild('x', NS_DATA);
  return x ? (formFields(x).get(ACCESS)?.[0] ?? DEFAULT_ACCESS) : undefined;
}

/** An existing node becomes readable by the audience (a `presence` one turns whitelist first). */
async function makeReadable(account: Account, node: string, access: Access, adopting = false): Promise<void> {
  await record(account, node, access, adopting);
  const config: Fields = access === 'presence' ? { [ACCESS]: 'whitelist', ...NOTIFY_ALL } : NOTIFY_ALL;
  await account.ctx.request(ps.configureNode(node, config));
  await sync(account, node);
}

/** A new node, made readable before its first item, so that the audience hears of that one too. */
async function createReadable(account: Account, node: string, access: Access, asked: Map<string, string[]> | undefined): Promise<void> {
  await record(account, node, access); // first: a node that exists is never readable without a record
  const config: Fields = { ...NOTIFY_ALL, [ACCESS]: access === 'presence' ? 'whitelist' : 'open' };
  for (const f of ['pubsub#max_items', 'pubsub#persist_items']) {
    const v = asked?.get(f);
    if (v) config[f] = v;
  }
  // retried: ejabberd aborts concurrent PEP node creations of different users (retry.ts)
  await retrying(account.ctx.log, `create ${node}`, () => account.ctx.request(ps.createNode(node, config))).catch((err: unknown) => {
    if (!(err instanceof StanzaError && err.condition === 'conflict')) throw err; // made meanwhile
  });
  await sync(account, node);
}

/** The client's publish-options / configure form with `presence` turned into `whitelist`. */
function rewriteAccess(x: Element): Element {
  return submitForm(formFields(x).get('FORM_TYPE')?.[0] ?? FORM_NODE_CONFIG, formOf(x));
}

/** A submitted form's fields but FORM_TYPE, `presence` turned into `whitelist`. */
function formOf(x: Element): Fields {
  const out: Fields = {};
  for (const [k, v] of formFields(x)) if (k !== 'FORM_TYPE') out[k] = k === ACCESS && v[0] === 'presence' ? 'whitelist' : v;
  return out;
}

function preconditionNotMet(node: string): StanzaError {
  const el = xml('error', { type: 'cancel' }, xml('conflict', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }), xml('precondition-not-met', { xmlns: NS_PUBSUB_ERRORS }));
  return new StanzaError('conflict', `node ${node} is configured otherwise`, 'cancel', el);
}

/** Send the client's iq as the proxy's own request, answer the client with the backend's answer. */
async function relay(ctx: RuleContext, original: Element, iq: Element, transform?: (res: Element) => Promise<Element>): Promise<void> {
  delete iq.attrs.id;
  try {
    let res = await ctx.request(iq);
    if (transform) res = await transform(res);
    const answer = xml('iq', { type: 'result', to: ctx.jid.toString(), ...(original.attrs.id ? { id: original.attrs.id as string } : {}) });
    answer.children = res.children;
    ctx.toClient(answer);
  } catch (err) {
    ctx.toClient(errorReply(original, err instanceof StanzaError ? err : new StanzaError('internal-server-error'), ctx.bare));
  }
}

/** Per session: nodes known to be owner-only (no registry item, configured so): asked once. */
function privateNodes(ctx: RuleContext): Set<string> {
  let s = ctx.state.get('pep-private') as Set<string> | undefined;
  if (!s) ctx.state.set('pep-private', (s = new Set()));
  return s;
}

/**
 * A publish to one of the user's own nodes (XEP-0163 §7, with XEP-0060 §7.1.5 publish-options).
 * Returns false when it may pass through unchanged.
 */
export async function ownPublish(account: Account, el: Element): Promise<boolean> {
  const ctx = account.ctx;
  const pubsub = el.getChild('pubsub', NS_PUBSUB)!;
  const node = pubsub.getChild('publish')!.attrs.node as string;
  const optionsX = pubsub.getChild('publish-options')?.getChild('x', NS_DATA);
  const fields = optionsX ? formFields(optionsX) : undefined;
  const asked = fields?.get(ACCESS)?.[0];
  let access = await registered(account, node);
  if (!access && !privateNodes(ctx).has(node)) {
    const model = await configuredModel(account, node);
    const wanted = model === undefined ? (asked ?? DEFAULT_ACCESS) : model;
    access = asAccess(wanted);
    if (model !== undefined && asked !== undefined && asked !== model) return false; // the backend's precondition error
    if (!access) privateNodes(ctx).add(node);
    else if (model === undefined) await createReadable(account, node, access, fields);
    else await makeReadable(account, node, access);
  }
  if (access !== 'presence') return false;
  if (asked !== undefined && asked !== 'presence') {
    ctx.toClient(errorReply(el, preconditionNotMet(node), ctx.bare));
    return true;
  }
  const iq = clone(el);
  const opts = iq.getChild('pubsub')!.getChild('publish-options');
  if (opts && optionsX) opts.children = [rewriteAccess(optionsX)];
  await relay(ctx, el, iq);
  return true;
}

/**
 * The owner's own node configuration (XEP-0060 §8.2.4) or creation with a configuration (§8.1.3):
 * `presence` becomes whitelist + members; another model than `presence` on a registered node ends
 * its membership. Returns false when it may pass through unchanged.
 */
export async function ownConfigure(account: Account, el: Element, create: boolean): Promise<boolean> {
  const ctx = account.ctx;
  const pubsub = el.getChild('pubsub', create ? NS_PUBSUB : NS_PUBSUB_OWNER)!;
  const node = (create ? pubsub.getChild('create') : pubsub.getChild('configure'))?.attrs.node as string | undefined;
  if (!node || !isClientNode(node)) return false;
  const x = pubsub.getChild('configure')?.getChild('x', NS_DATA);
  const asked = x ? formFields(x).get(ACCESS)?.[0] : undefined;
  const wanted = asAccess(asked ?? (create ? DEFAULT_ACCESS : undefined));
  if (!wanted) {
    if (asked === undefined || create) return false; // nothing about access, or a private new node
    if (await registered(account, node)) {
      await unrecord(account, node);
      await sync(account, node, new Set()).catch(() => undefined);
    }
    return false;
  }
  privateNodes(ctx).delete(node);
  await record(account, node, wanted);
  const iq = clone(el);
  const conf = iq.getChild('pubsub')!.getChild('configure');
  // a new node's contacts hear of retractions and of its deletion, unless the client says otherwise
  const fields: Fields = { ...(create ? NOTIFY_ALL : {}), ...(x ? formOf(x) : {}) };
  if (wanted === 'presence') fields[ACCESS] = 'whitelist';
  const form = submitForm(FORM_NODE_CONFIG, fields);
  if (conf) conf.children = [form];
  else iq.getChild('pubsub')!.children.push(xml('configure', null, form));
  // the members before the answer: what the client does next may already count on them
  await relay(ctx, el, iq, async (res) => {
    await sync(account, node).catch((err: unknown) => ctx.log.warn({ node, err: String(err) }, 'PEP membership not set'));
    return res;
  });
  return true;
}

/** The owner deletes a node (XEP-0060 §8.4): once it is gone, its record goes (a later node of that name starts afresh). */
export async function ownDelete(account: Account, el: Element, node: string): Promise<boolean> {
  if (!(await registered(account, node))) return false; // passes through
  await relay(account.ctx, el, clone(el), async (res) => {
    await unrecord(account, node);
    return res;
  });
  return true;
}

/** The owner reads a node's configuration: a `presence` node says `presence`, as the client set it. */
export async function ownConfigGet(account: Account, el: Element, node: string): Promise<boolean> {
  if ((await registered(account, node)) !== 'presence') return false; // passes through
  await relay(account.ctx, el, clone(el), async (result) => {
    const x = result.getChild('pubsub', NS_PUBSUB_OWNER)?.getChild('configure')?.getChild('x', NS_DATA);
    for (const f of x?.getChildren('field') ?? []) {
      if (f.attrs.var !== ACCESS) continue;
      for (const v of f.getChildren('value')) if (v.getText() === 'whitelist') v.children = ['presence'];
    }
    return result;
  });
  return true;
}
