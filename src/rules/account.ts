// The user's account as the XEP-0207 rules see it: three nodes on the user's own PEP service, a
// session-local cache of them, and the session's RFC 6121 flags. Everything durable is in the nodes,
// so any proxy instance can serve any session; the cache is rebuilt at every login and kept current
// by the nodes' notifications.
//
//   presence               XEP-0207 §3: one item per available resource (id = resource), payload the
//                          resource's <presence/>; subscribers = contacts allowed to see it (§4, §8)
//   xep207-proxy/roster    private (whitelist, no members): one item per contact (roster-item.ts)
//   xep207-proxy/inbox     whitelist, publish_model open: other users' proxies leave subscription
//                          presences here (item id "sub:<jid>" or "auth:<jid>"), so a request made
//                          while the user is offline waits for the next login. Where the profile
//                          says lazyInbox (ejabberd), made when the first request comes, which
//                          until then waits in the sender's chat node (inbox-lazy.ts)
//
// The account rule (first in the table) does the login work: find the backend profile, make the
// backend session available, create/configure missing nodes, load the roster. Each of its requests
// is retried on transient backend errors (retry.ts); a setup that fails for good ends the session.
import type { Element } from 'ltx';
import type { BackendName, BackendProfile } from '../backends/profile.js';
import { PROFILES, profileForIdentity } from '../backends/profile.js';
import type { Fields } from '../pubsub/forms.js';
import * as ps from '../pubsub/requests.js';
import { itemsOfResult } from '../pubsub/events.js';
import { ownString } from '../stream/chars.js';
import { xml } from '../stream/xml.js';
import { bareOf } from '../xmpp/jid.js';
import { StanzaError } from '../xmpp/stanza-error.js';
import { NODE_DELIVERED } from './chat-nodes.js';
import { Gate } from './gate.js';
import { NODE_PEP } from './pep-access.js';
import { RecentSet } from './recent-set.js';
import { RetryBudget, SETUP_RETRY, isTransient, retrying, type RetryPolicy } from './retry.js';
import type { Rule, RuleContext } from './types.js';
import { fromStored, isEmpty, storedKey, tombstone, toStored, type RosterEntry } from './roster-item.js';

export const NODE_PRESENCE = 'presence';
export const NODE_ROSTER = 'xep207-proxy/roster';
export const NODE_INBOX = 'xep207-proxy/inbox';

/**
 * Nodes made at their first write, not at the first login: nobody but the user's own sessions
 * writes to them, and an empty one reads like a missing one. A first login makes two nodes instead
 * of five (ejabberd takes one creation at a time, bench (e)). The presence node and the inbox are
 * made at once: contacts subscribe to the one and leave requests in the other while the user is away;
 * where the profile says lazyInbox, the inbox too waits for its first use (inbox-lazy.ts).
 */
const LAZY: ReadonlySet<string> = new Set([NODE_ROSTER, NODE_DELIVERED, NODE_PEP]);

/**
 * The nodes the login reads (all their items: each is what a rule reads right after the login anyway,
 * the roster, stale own resources, the inbox, the PEP registry): an answer says the node exists.
 * Not read: the delivery markers, read at initial presence (chat.ts); a first write tries to create
 * the node, which answers conflict if it exists.
 */
const READ_AT_LOGIN: readonly string[] = [NODE_PRESENCE, NODE_ROSTER, NODE_INBOX, NODE_PEP];

/** Our nodes as bits (Account's createdBits, unmadeBits: a number per session, not a set). */
const NODE_BITS: ReadonlyMap<string, number> = new Map([NODE_PRESENCE, NODE_ROSTER, NODE_INBOX, NODE_PEP, NODE_DELIVERED].map((node, i) => [node, 1 << i]));
const bitOf = (node: string): number => NODE_BITS.get(node) ?? 0;

/** The roster of an account without contacts (never written: Account makes its own map first). */
const NO_ROSTER: ReadonlyMap<string, RosterEntry> = new Map();
const SETTLED: Promise<unknown> = Promise.resolve();

/** Called on every roster change of a session's account (its own writes and other sessions'). */
export type ChangeHandler = (account: Account, prev: RosterEntry | undefined, next: RosterEntry | undefined) => void;
/** Called when the session's client sends initial presence. */
export type AvailableHandler = (account: Account) => void;

/** What the other rules do on account events: one list per rule table, shared by its sessions. */
export interface AccountHooks {
  change: readonly ChangeHandler[];
  available: readonly AvailableHandler[];
  /** --pubsub-service: the one service of every domain's chat nodes (default: pubsub.<domain>) */
  pubsubService?: string;
}


export interface AccountOptions {
  /** 'auto' asks the server's disco#info identity */
  backend: BackendName | 'auto';
  /** per-domain profiles found so far (one map per rule table, i.e. per proxy) */
  profiles: Map<string, Promise<BackendProfile>>;
  /** per backend profile: the node creations of the login setup, across the proxy's sessions */
  creates: Map<string, Gate>;
  /** how the setup's requests are retried */
  retry: RetryPolicy;
  /** accounts whose presence node this proxy has seen (their login's reads all go out at once) */
  known: RecentSet;
}

/** Accounts a proxy remembers having seen with a presence node (about 100 bytes each); README "Presence, subscriptions and roster". */
export const KNOWN_ACCOUNTS = 50_000;

/** What a login's read of one of our nodes found. */
type Found = 'exists' | 'missing' | 'unknown';

export class Account {
  profile: BackendProfile = PROFILES.generic;
  readonly bare: string;
  readonly full: string;
  /** the cached roster (made at its first entry: an account without contacts keeps no map) */
  private rosterMap: Map<string, RosterEntry> | undefined;
  /**
   * last presence seen per contact (bare JID) and resource (created on first use); the user's other
   * resources under its own bare JID, never this session's own (see echoPriority)
   */
  contactPresence: Map<string, Map<string, Element>> | undefined;
  /** the priority of this session's own presence as its echo from the presence node said (undefined: none since the last unavailable) */
  echoPriority: number | undefined;
  /** the client sent initial presence and has not gone unavailable */
  available = false;
  /** the proxy's nodes this login made (the user's first login through the proxy, as a rule): NODE_BITS */
  private createdBits = 0;
  /**
   * Our LAZY nodes that the login found missing (or did not read: the delivery markers), made only
   * before their first write (NODE_BITS); `making`: each creation once asked for. A read of a
   * missing node answers item-not-found, which every reader takes for "empty".
   */
  private unmadeBits = 0;
  private making: Map<string, Promise<void>> | undefined;
  /** the proxy's gate for the profile's node creations (set by the login) */
  private gate: Gate | undefined;
  /** what the login's probes read of the nodes that other rules read right after it (READ_AT_LOGIN) */
  private atLogin: Map<string, Element> | undefined;
  /** the user's other connected resources, as the backend's presence between its sessions says */
  connected: Set<string> | undefined;
  /** the priority of the client's last broadcast presence (RFC 6121 §4.7.2.3) */
  priority = 0;
  /**
   * Presence probes in progress, and the resources notifications told about meanwhile (presence.ts).
   * The login's read of the presence node counts as one, from its request until presence.ts has
   * taken its answer (`endLoginProbe`).
   */
  probing = 0;
  touched: Set<string> | undefined;
  private loginProbe = false;
  /**
   * The cache of the user's own other resources is current: seeded from the login's read of the
   * presence node and kept by its notifications since, which the backend sends this session from
   * the login on (presence.ts). Initial presence then needs no probe of the own node.
   */
  ownKnown = false;
  /** initial presences so far (presence.ts: a login read that outlived one must not say the cache is current) */
  initials = 0;
  /** the backend notified this session of the presence node's changes from before the login read it */
  ownNotifiedAtLogin = false;
  /** the entity capabilities (XEP-0115 <c/>) last put on the backend leg's presence */
  upstreamCaps: string | undefined;
  /** the client asked for the roster: it gets roster pushes (RFC 6121 §2.2 "interested resource") */
  interested = false;
  /** the roster node could be read at login */
  rosterLoaded = false;
  /**
   * Our own roster writes whose notification has not come back yet (per contact, in order). The
   * notification of an older write of ours may arrive after a newer one was applied; it must not
   * roll the cache back.
   */
  private ownWrites: Map<string, string[]> | undefined;
  /** roster pushes sent so far (their ids: push-<session>-<n>) */
  pushSeq = 0;
  /** the last exclusive section's end (undefined once it has run: an idle session keeps none) */
  private lock: Promise<unknown> | undefined;

  constructor(
    readonly ctx: RuleContext,
    private readonly hooks: AccountHooks,
  ) {
    this.bare = ctx.bare;
    this.full = ctx.jid.toString();
  }

  /** The --pubsub-service override of the chat service, if any (chat-nodes.ts chatService). */
  get pubsubService(): string | undefined {
    return this.hooks.pubsubService;
  }

  becameAvailable(): void {
    this.available = true;
    this.initials++;
    for (const h of this.hooks.available) h(this);
  }

  /** The cached roster, per contact (bare JID). */
  get roster(): ReadonlyMap<string, RosterEntry> {
    return this.rosterMap ?? NO_ROSTER;
  }

  /** Did this login make `node` (one of ours)? */
  createdNode(node: string): boolean {
    return (this.createdBits & bitOf(node)) !== 0;
  }

  /** Run `fn` after every earlier exclusive section (roster read-modify-write stays consistent). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = (this.lock ?? SETTLED).then(fn, fn);
    const tail: Promise<unknown> = run.then(
      () => void (this.lock === tail && (this.lock = undefined)),
      () => void (this.lock === tail && (this.lock = undefined)),
    );
    this.lock = tail;
    return run;
  }

  /** Node configuration for one of our nodes, with the backend's extra fields. */
  nodeConfig(node: string): Fields {
    const common: Fields = {
      'pubsub#persist_items': '1',
      'pubsub#max_items': 'max',
      'pubsub#notify_retract': '1',
      'pubsub#send_last_published_item': 'never',
      ...this.profile.extraNodeConfig,
    };
    if (node === NODE_PRESENCE) return { ...common, 'pubsub#access_model': this.profile.presenceAccessModel };
    if (node === NODE_INBOX) return { ...common, 'pubsub#access_model': 'whitelist', 'pubsub#publish_model': 'open' };
    return { ...common, 'pubsub#access_model': 'whitelist' };
  }

  // ---- login ---------------------------------------------------------------------------------

  /** Every step is idempotent, so each one is simply sent again on a transient error. */
  async start(options: AccountOptions): Promise<void> {
    const budget = new RetryBudget(options.retry, this.ctx.log);
    this.profile = await budget.run('profile', () => this.detectProfile(options));
    // Deliveries to a bare JID (pubsub notifications included) need an available backend session on
    // both backends, and roster pushes must reach a client that never sends presence: so every
    // session is made available right away, with a bare <presence/> that carries nothing of the
    // user's (their real presence goes into the `presence` node).
    this.ctx.toBackend(xml('presence'));
    await this.ensureNodes(budget, options);
    if (budget.retries > 0) this.ctx.log.info({ retries: budget.retries }, 'account setup done after retries');
  }

  /** The domain's profile, asked once per proxy; a transient failure is not remembered. */
  private detectProfile(options: AccountOptions): Promise<BackendProfile> {
    if (options.backend !== 'auto') return Promise.resolve(PROFILES[options.backend]);
    const profiles = options.profiles;
    let p = profiles.get(this.ctx.domain);
    if (!p) {
      p = this.ctx.request(ps.discoInfo(this.ctx.domain)).then(
        (res) => {
          const ids = res.getChild('query')?.getChildren('identity') ?? [];
          const server = ids.find((i) => i.attrs.category === 'server') ?? ids.find((i) => i.attrs.name);
          return profileForIdentity(server?.attrs.name as string | undefined);
        },
        (err: unknown) => {
          profiles.delete(this.ctx.domain);
          // retried: taking a busy ejabberd for 'generic' would create its nodes wrongly configured
          if (isTransient(err)) throw err;
          return PROFILES.generic;
        },
      );
      profiles.set(this.ctx.domain, p);
    }
    return p;
  }

  /**
   * Create our nodes where missing, subscribe the owner where the backend needs it, load the roster.
   * Round trips are what a login waits for, so nothing waits that need not: the nodes are probed
   * together, the roster's probe being its read; the creations go out together (through the
   * profile's gate: ejabberd takes one at a time); the roster of a node this login just made is
   * empty; the owner's subscriptions are listed only where a node existed before. A login of an
   * account this proxy knows waits for one round trip; any other reads the presence node alone
   * first, and then makes it (a first login: two round trips, as with every read at once) or reads
   * the others (a user this instance has not served yet: two).
   */
  private async ensureNodes(budget: RetryBudget, options: AccountOptions): Promise<void> {
    let gate = options.creates.get(this.profile.name);
    if (!gate) options.creates.set(this.profile.name, (gate = new Gate(this.profile.concurrentCreates)));
    this.gate = gate;
    const wanted = [...READ_AT_LOGIN, NODE_DELIVERED];
    const lazy = (node: string) => LAZY.has(node) || (node === NODE_INBOX && this.profile.lazyInbox);
    // Which of our nodes exist: a read of each (ejabberd and Prosody look a node up by its name),
    // never a disco#items listing of the user's nodes, which ejabberd answers by scanning every PEP
    // node it holds (30-40 ms of its CPU per login with 100k nodes, bench (e)). Missing:
    // item-not-found; anything else: created (now, or lazily before the first write), a conflict
    // saying it exists.
    const probe = (node: string) => budget.run(`probe ${node}`, () => this.ctx.request(ps.items(undefined, node)));
    const asked = new Map<string, Promise<Element>>();
    const ask = (node: string): Promise<Element> => {
      let p = asked.get(node);
      if (!p) {
        p = probe(node);
        p.catch(() => undefined); // read below
        asked.set(node, p);
      }
      return p;
    };
    const outcome = (node: string): Promise<Found> =>
      ask(node).then(
        (res) => {
          if (node !== NODE_ROSTER) (this.atLogin ??= new Map()).set(node, res);
          return 'exists' as const;
        },
        (err: unknown) => (err instanceof StanzaError && err.condition === 'item-not-found' ? ('missing' as const) : ('unknown' as const)),
      );
    // An account this proxy has seen with its presence node: every read goes out at once (one round
    // trip). Any other: the presence node's read alone first. Our other nodes are made by the user's
    // own sessions after the presence node (at a login that made it, or later), so where it is
    // missing, this is the user's first login through the proxy and they are missing too: three
    // requests fewer per first login (each an item-not-found: about 0.1 ms of ejabberd's CPU), for
    // one round trip more at the first login of a known user through this instance.
    const known = options.known.has(this.ctx.bare);
    if (known) ask(NODE_ROSTER); // sent first, as before this change
    this.probing++; // the presence node's read: a notification meanwhile is newer than its answer
    this.loginProbe = true;
    const presence = outcome(NODE_PRESENCE);
    const found = await Promise.all(
      wanted.map(async (node): Promise<Found> => {
        if (!READ_AT_LOGIN.includes(node)) return 'unknown';
        if (node === NODE_PRESENCE) return presence;
        if (!known && (await presence) === 'missing') return 'missing';
        return outcome(node);
      }),
    );
    const existing = new Set(wanted.filter((_, i) => found[i] === 'exists'));
    this.ownNotifiedAtLogin = this.profile.ownerNotifiedImplicitly; // else: the owner's subscription listed below
    const roster = existing.has(NODE_ROSTER) ? asked.get(NODE_ROSTER)!.then((res) => this.readRoster(res)) : undefined;
    roster?.catch(() => undefined); // awaited below: a failure while the creations run is not unhandled
    for (const node of wanted) if (lazy(node) && !existing.has(node)) this.unmadeBits |= bitOf(node);
    // nodes this login made: empty, and nobody subscribed to them (a conflict: another session made it)
    let created = 0;
    // One pass through the gate for all of this login's creations, sent together: the backend's
    // session handles one stanza after the other (ejabberd runs a PEP request in the sender's c2s
    // process, transaction included), so a login's creations never collide with each other, only
    // with other sessions'. Two creations then hold the gate for one round trip, not two.
    // A retry sends again only what has not gone through.
    const pending = new Set(wanted.filter((node) => !existing.has(node) && !lazy(node)));
    if (pending.size > 0) {
      await budget.run(`create ${[...pending].join(', ')}`, () =>
        gate.run(async () => {
          const nodes = [...pending];
          const outcomes = await Promise.allSettled(nodes.map((node) => this.ctx.request(ps.createNode(node, this.nodeConfig(node)))));
          // every answer is in before the gate is released: an error must not let the next login's
          // creation overlap one of ours still in flight
          let failure: unknown;
          const made: string[] = [];
          nodes.forEach((node, i) => {
            const o = outcomes[i]!;
            if (o.status === 'fulfilled') {
              created |= bitOf(node);
              pending.delete(node);
              made.push(node);
            } else if (o.reason instanceof StanzaError && o.reason.condition === 'conflict') {
              pending.delete(node); // another session made it
            } else failure ??= o.reason;
          });
          if (made.length > 0) this.ctx.log.info({ nodes: made }, 'created nodes'); // one line per login
          if (failure !== undefined) throw failure;
        }),
      );
    }
    this.createdBits = created;
    if (existing.has(NODE_PRESENCE) || (created & bitOf(NODE_PRESENCE)) !== 0) options.known.add(this.ctx.bare);
    if (found[wanted.indexOf(NODE_ROSTER)] === 'missing') this.rosterLoaded = true; // no roster yet: empty
    const made = wanted.filter((node) => (this.unmadeBits & bitOf(node)) === 0);
    await Promise.all([
      roster ?? (this.rosterLoaded ? undefined : this.loadRoster(budget)),
      this.profile.ownerNotifiedImplicitly ? undefined : this.subscribeOwner(budget, made, created),
    ]);
  }

  /**
   * For a rule's read right after the login: the items of one of our nodes as the login read them
   * (once: the reader takes them; undefined if the login did not read them), `none` when the login
   * made the node or found it missing and it has not been made since: nothing to read.
   */
  takeLoginRead(node: string): Element | 'none' | undefined {
    const res = this.peekLoginRead(node);
    if (res === undefined || res === 'none') return res;
    this.atLogin!.delete(node);
    if (this.atLogin!.size === 0) this.atLogin = undefined; // nothing kept for an idle session
    return res;
  }

  /** The same, for a rule before the one that takes it. */
  peekLoginRead(node: string): Element | 'none' | undefined {
    if (((this.createdBits | this.unmadeBits) & bitOf(node)) !== 0) return 'none';
    return this.atLogin?.get(node);
  }

  /** One of our LAZY nodes is not made: the login found it missing, and no write made it since. */
  lacks(node: string): boolean {
    return (this.unmadeBits & bitOf(node)) !== 0;
  }

  /** One of our LAZY nodes exists after all: another session of the user made it (its read, its notification). */
  noteExists(node: string): void {
    this.unmadeBits &= ~bitOf(node);
  }

  /** The login's read of the presence node has been taken in (see `probing`). */
  endLoginProbe(): void {
    if (!this.loginProbe) return;
    this.loginProbe = false;
    if (--this.probing === 0) this.touched = undefined;
  }

  /**
   * Before a write to one of the LAZY nodes: make it if the login found it missing (once per session;
   * a conflict: another session made it meanwhile). Never left to the publish: ejabberd would
   * auto-create the node with its defaults (max_items 1).
   */
  made(node: string): Promise<void> {
    const bit = bitOf(node);
    if ((this.unmadeBits & bit) === 0) return Promise.resolve();
    let p = this.making?.get(node);
    if (!p) {
      const done = () => {
        this.making?.delete(node);
        if (this.making?.size === 0) this.making = undefined;
      };
      p = this.make(node).then(
        () => {
          this.unmadeBits &= ~bit;
          done();
        },
        (err: unknown) => {
          done(); // the next write tries again
          throw err;
        },
      );
      (this.making ??= new Map()).set(node, p);
    }
    return p;
  }

  private async make(node: string): Promise<void> {
    const gate = this.gate ?? new Gate(1);
    try {
      await retrying(this.ctx.log, `create ${node}`, () => gate.run(() => this.ctx.request(ps.createNode(node, this.nodeConfig(node)))));
      this.ctx.log.info({ nodes: [node] }, 'created nodes');
    } catch (err) {
      if (!(err instanceof StanzaError && err.condition === 'conflict')) throw err;
    }
    if (!this.profile.ownerNotifiedImplicitly) await this.ctx.request(ps.subscribe(undefined, node, this.bare));
  }

  /** Where the owner is not notified of its own nodes implicitly: subscribe its bare JID to them. */
  private async subscribeOwner(budget: RetryBudget, wanted: string[], created: number): Promise<void> {
    let have = new Set<string>();
    if (wanted.some((node) => (created & bitOf(node)) === 0)) {
      const subs = await budget.run('list subscriptions', () => this.ctx.request(ps.mySubscriptions(undefined))).catch(() => undefined);
      have = new Set(
        subs?.getChild('pubsub')?.getChild('subscriptions')?.getChildren('subscription')
          .filter((s) => s.attrs.jid === this.bare && s.attrs.subscription === 'subscribed')
          .map((s) => s.attrs.node as string) ?? [],
      );
    }
    this.ownNotifiedAtLogin = have.has(NODE_PRESENCE); // subscribed now: what was published before is missed
    await Promise.all(wanted.filter((node) => !have.has(node)).map((node) => budget.run(`subscribe ${node}`, () => this.ctx.request(ps.subscribe(undefined, node, this.bare)))));
  }

  private async loadRoster(budget: RetryBudget): Promise<void> {
    this.readRoster(await budget.run('load roster', () => this.ctx.request(ps.items(undefined, NODE_ROSTER))));
  }

  private readRoster(res: Element): void {
    for (const item of itemsOfResult(res)) {
      const e = fromStored(item.payload);
      if (e && e.jid === item.id) (this.rosterMap ??= new Map()).set(e.jid, e);
    }
    this.rosterLoaded = true;
  }

  // ---- roster writes -------------------------------------------------------------------------

  entry(jid: string): RosterEntry | undefined {
    return this.roster.get(jid);
  }

  /**
   * Store an entry (with the presence that caused it as `event`, if any). The cache and the change
   * listeners are updated at once; the node's notification of the same content is then a no-op.
   */
  async save(next: RosterEntry, event?: Element): Promise<void> {
    const stored: RosterEntry = { ...next };
    if (event) stored.event = event;
    else delete stored.event;
    const prev = this.roster.get(next.jid);
    const key = storedKey(stored);
    if (storedKey(prev) === key) return;
    this.expectEcho(next.jid, key);
    this.apply(prev, stored);
    await this.made(NODE_ROSTER);
    await this.ctx.request(ps.publish(undefined, NODE_ROSTER, stored.jid, toStored(stored), { 'pubsub#access_model': 'whitelist' }));
  }

  /**
   * Remove a contact. The removal travels as a publish (a hidden tombstone item), never as a bare
   * retraction: ejabberd notifies the owner's resources of publishes to the owner's PEP nodes but not
   * of retractions (mod_pubsub's broadcast_retract_items reaches explicit subscribers only), so the
   * user's other sessions would never hear of it. A tombstone that remembers inbox nonces stays; an
   * empty one is retracted once published, when every session has seen it (a retraction changes
   * nothing visible, so it does not matter who hears of it).
   */
  async remove(jid: string): Promise<void> {
    const prev = this.roster.get(jid);
    if (!prev) return;
    const t = tombstone(prev);
    await this.save(t);
    if (!isEmpty(t)) return;
    this.expectEcho(jid, '');
    this.apply(t, undefined);
    await this.ctx.request(ps.retract(undefined, NODE_ROSTER, jid)).catch((err: unknown) => {
      if (!(err instanceof StanzaError && err.condition === 'item-not-found')) throw err;
    });
  }

  /** A roster node notification (any session's write): update the cache, tell the listeners. */
  stored(jid: string, next: RosterEntry | undefined): void {
    const key = storedKey(next);
    const mine = this.ownWrites?.get(jid);
    const at = mine ? mine.indexOf(key) : -1;
    if (at !== -1) {
      // the echo of one of our writes: everything up to it has come back. The cache already holds
      // it, or a newer write of ours, unless another session's write was applied in between: the
      // backend's order puts ours after that one, so ours is the node's content (when it is our last)
      mine!.splice(0, at + 1);
      if (mine!.length > 0) return;
      this.ownWrites!.delete(jid);
      const prev = this.roster.get(jid);
      if (storedKey(prev) === key) return;
      // its event was delivered when we wrote it: not again
      const again = next ? { ...next } : undefined;
      if (again) delete again.event;
      this.apply(prev, again);
      return;
    }
    const prev = this.roster.get(jid);
    if (storedKey(prev) === key) return;
    this.apply(prev, next);
  }

  private expectEcho(jid: string, key: string): void {
    this.ownWrites ??= new Map();
    const list = this.ownWrites.get(jid) ?? [];
    list.push(key);
    if (list.length > 16) list.shift(); // echoes that never came (a lost notification) are forgotten
    this.ownWrites.set(jid, list);
  }

  private apply(prev: RosterEntry | undefined, next: RosterEntry | undefined): void {
    if (next) (this.rosterMap ??= new Map()).set(next.jid, next);
    else if (prev) this.rosterMap?.delete(prev.jid);
    for (const h of this.hooks.change) {
      try {
        h(this, prev, next);
      } catch (err) {
        this.ctx.log.error({ err }, 'roster change listener failed');
      }
    }
  }
}

const KEY = 'account';

/** The session's Account (created by the account rule at bind). */
export function accountOf(ctx: RuleContext): Account {
  const a = ctx.state.get(KEY) as Account | undefined;
  if (!a) throw new StanzaError('internal-server-error', 'account not ready');
  return a;
}

export function hasAccount(ctx: RuleContext): boolean {
  return ctx.state.has(KEY);
}

/**
 * First in the table: sets up the Account at bind, and keeps the backend's own presence traffic for
 * the user's sessions from reaching the client. Every backend leg is available (see start()), so the
 * backend reflects each leg's presence to the leg itself and broadcasts it, and its unavailability
 * when the leg closes, to the user's other legs. None of that is the user's presence: a client sees
 * only what the mapping (the `presence` node) says, or a resource that never sent presence would look
 * available (RFC 6121 §4.2) and every real one would appear twice. The proxy never sends a presence to
 * the user's own JID upstream (presence.ts treats it as broadcast), so nothing else comes from there.
 */
export function accountRule(backend: BackendName | 'auto', hooks: AccountHooks, retry: RetryPolicy = SETUP_RETRY): Rule {
  const options: AccountOptions = { backend, profiles: new Map(), creates: new Map(), retry, known: new RecentSet(KNOWN_ACCOUNTS) };
  return {
    name: 'account',
    sees: { backend: ['presence'] },
    async onBound(ctx) {
      const account = new Account(ctx, hooks);
      ctx.state.set(KEY, account);
      try {
        await account.start(options);
      } catch (err) {
        // Without its nodes and roster the session would look connected but show no contacts and
        // lose presence: better to end it. internal-server-error is RFC 6120's condition for a
        // service that cannot serve the stream (remote-connection-failed excludes failures inside
        // the service's own domain, which the backend is); it blames nobody, so the client may
        // simply log in again later. Logged once, here.
        ctx.log.error({ err: String(err) }, 'account setup failed: session ended');
        const reason = err instanceof StanzaError ? err.message : 'internal error';
        ctx.endSession('internal-server-error', `account setup failed: ${reason}`);
      }
    },
    fromBackend(s, ctx) {
      if (s.name !== 'presence' || s.attrs.type === 'error') return false;
      const from = s.attrs.from;
      if (from === undefined || bareOf(from).toLowerCase() !== ctx.bare) return false;
      // what it does tell: which of the user's resources are connected (RFC 6121 §8.5.3 delivers a
      // message to a connected full JID even before that resource sends presence)
      // (the session's own resource is not kept: every reader skips it, so an idle session keeps no set;
      // a copy of the others', not a slice of the chunk the presence came in)
      const slash = from.indexOf('/');
      if (slash !== -1 && hasAccount(ctx) && from.slice(slash + 1) !== ctx.jid.resource) {
        const a = accountOf(ctx);
        if (s.attrs.type === 'unavailable') a.connected?.delete(from.slice(slash + 1));
        else if (s.attrs.type === undefined) (a.connected ??= new Set()).add(ownString(from.slice(slash + 1)));
      }
      return true;
    },
  };
}
