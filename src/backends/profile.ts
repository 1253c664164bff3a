// What a backend does natively and what the proxy emulates on it: every backend difference the rules
// care about is a field here, so a rule reads like the spec and never asks "is this Prosody?".
// The facts come from ../shared/research/BACKENDS.md and docs/backends.md (probed on ejabberd 23.01
// and Prosody 0.12.3).
import type { Fields } from '../pubsub/forms.js';

export type BackendName = 'ejabberd' | 'prosody' | 'generic';

export interface BackendProfile {
  readonly name: BackendName;
  /**
   * Access model of a user's `presence` node. XEP-0207 §8 says "authorize"; where the backend lacks it
   * the proxy uses "whitelist" and approves a subscriber by making it a member and subscribing it.
   */
  readonly presenceAccessModel: 'authorize' | 'whitelist';
  /** the requester subscribes itself when asking (authorize: the subscription waits as 'pending') */
  readonly subscribeOnRequest: boolean;
  /** approving a subscriber needs the 'member' affiliation first (whitelist) */
  readonly approveNeedsAffiliation: boolean;
  /**
   * The owner's available resources get notifications of the owner's own PEP nodes without
   * subscribing (ejabberd). Elsewhere the proxy subscribes the owner's bare JID (an explicit
   * subscription on ejabberd would deliver everything twice).
   */
  readonly ownerNotifiedImplicitly: boolean;
  /**
   * The backend sends a new session the last items of the owner's own PEP nodes it has +notify for
   * (Prosody, when it learns the session's caps). Elsewhere the proxy sends them (ejabberd sends
   * none to a session whose caps come after its first presence, as the proxy's do).
   */
  readonly ownLastItemsAtLogin: boolean;
  /** node configuration fields beyond XEP-0060's common ones that this backend accepts and needs */
  readonly extraNodeConfig: Fields;
  /**
   * Error conditions meaning "that user's node does not exist" on a local account (an account that
   * never logged in through the proxy, or none at all: the backends answer both alike). Any other
   * error reaching another user's node means the service is unreachable.
   */
  readonly missingNodeConditions: readonly string[];
  /**
   * The user's own PEP nodes can be listed with an entity affiliations request (XEP-0060 §5.7,
   * affiliation `owner`) at a cost that does not grow with the server's node count (ejabberd: a
   * look-up by the user's key, against disco#items' scan of every PEP node; bench (e)). Elsewhere
   * the first login looks for PEP data by reading well-known nodes, then lists with disco#items.
   */
  readonly ownNodesByAffiliations: boolean;
  /**
   * How many of the login setup's node creations one proxy sends at once, across its sessions
   * (rules/gate.ts): ejabberd aborts concurrent creations of different users' PEP nodes.
   */
  readonly concurrentCreates: number;
  /**
   * The inbox is made when the user first gets a subscription request, not at the first login (one
   * node creation fewer per new account: ejabberd's dearest request of a login, bench (e)). Until
   * then a contact's proxy leaves a request in its chat node to the user (only the sender can write
   * there) and announces that node in the user's waiting node (rules/inbox-lazy.ts). Needs a chat
   * service where users may create nodes (ejabberd's pubsub service; Prosody's component lets only
   * its admins).
   */
  readonly lazyInbox: boolean;
}

export const PROFILES: Record<BackendName, BackendProfile> = {
  ejabberd: {
    name: 'ejabberd',
    presenceAccessModel: 'authorize',
    subscribeOnRequest: true,
    approveNeedsAffiliation: false,
    ownerNotifiedImplicitly: true,
    ownLastItemsAtLogin: false,
    // deliver without depending on the subscriber's presence (the proxy keeps sessions available
    // anyway), and stamp the publisher on items so that the proxy can check who wrote them
    extraNodeConfig: { 'pubsub#presence_based_delivery': '0', 'pubsub#itemreply': 'publisher' },
    missingNodeConditions: ['item-not-found'], // a remote domain: forbidden
    ownNodesByAffiliations: true,
    concurrentCreates: 1,
    lazyInbox: true,
  },
  prosody: {
    name: 'prosody',
    presenceAccessModel: 'whitelist',
    subscribeOnRequest: false,
    approveNeedsAffiliation: true,
    ownerNotifiedImplicitly: false,
    ownLastItemsAtLogin: true,
    extraNodeConfig: {},
    missingNodeConditions: ['forbidden'], // a remote domain: not-allowed
    ownNodesByAffiliations: false,
    concurrentCreates: 16,
    lazyInbox: false,
  },
  // an unknown XEP-0060 service: only what every implementation must do (whitelist, affiliations)
  generic: {
    name: 'generic',
    presenceAccessModel: 'whitelist',
    subscribeOnRequest: false,
    approveNeedsAffiliation: true,
    ownerNotifiedImplicitly: false,
    ownLastItemsAtLogin: false,
    extraNodeConfig: {},
    missingNodeConditions: ['item-not-found', 'forbidden'],
    ownNodesByAffiliations: false,
    concurrentCreates: 4,
    lazyInbox: false,
  },
};

/** The profile for a server disco#info identity name ('ejabberd', 'Prosody', ...). */
export function profileForIdentity(name: string | undefined): BackendProfile {
  const n = (name ?? '').toLowerCase();
  if (n.includes('ejabberd')) return PROFILES.ejabberd;
  if (n.includes('prosody')) return PROFILES.prosody;
  return PROFILES.generic;
}
