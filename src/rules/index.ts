// The ordered rule table. The first rule to claim a stanza wins; a stanza nobody claims passes
// through unchanged.
import type { BackendName } from '../backends/profile.js';
import { accountRule } from './account.js';
import { carbonsRule } from './carbons.js';
import { chatOnAvailable, chatRule, type ChatOptions } from './chat.js';
import { directedPresenceRule } from './directed-presence.js';
import { mucRule } from './muc.js';
import type { RetryPolicy } from './retry.js';
import { ownNodesRule } from './own-nodes.js';
import { pepOnAvailable, pepOnChange, pepRule } from './pep.js';
import { pingRule } from './ping.js';
import { presenceOnChange, presenceRule } from './presence.js';
import { rosterOnChange, rosterRule } from './roster.js';
import { subscriptionOnAvailable, subscriptionOnChange, subscriptionRule } from './subscription.js';
import type { Rule } from './types.js';

export type { Rule, RuleContext, Verdict } from './types.js';

export interface RuleOptions {
  /** which backend profile to use ('auto': from the server's disco#info identity) */
  backend?: BackendName | 'auto';
  /** how the login setup retries the backend's transient errors (default SETUP_RETRY; tests shorten it) */
  setupRetry?: RetryPolicy;
  /** one pubsub service for every domain's chat nodes (default: pubsub.<the recipient's domain>) */
  pubsubService?: string;
  /** ms between two sweeps of a room for occupants whose session is gone (default DEFAULT_SWEEP_MS) */
  mucSweepInterval?: number;
  /** how many messages a room keeps for joiners (default 20) */
  mucHistory?: number;
  /** the MUC service of a served domain D is `<mucPrefix>.<D>` (default 'conference') */
  mucPrefix?: string;
}

export function defaultRules(options: RuleOptions = {}): Rule[] {
  const chat: ChatOptions = options.pubsubService ? { pubsubService: options.pubsubService } : {};
  return [
    // login: profile, nodes, roster (first: the others need it); roster changes and initial presence
    // reach the others through the hooks (shared by all sessions: nothing registered per session).
    // Presence first: when a subscription ends, the contact's resources go unavailable before the
    // roster push and the presence that end it, as a server does (RFC 6121 §3.2.3, §3.3.3); a client
    // that ignores presence from non-contacts would otherwise never see them go.
    accountRule(options.backend ?? 'auto', {
      change: [presenceOnChange, rosterOnChange, subscriptionOnChange, pepOnChange],
      available: [subscriptionOnAvailable, chatOnAvailable(chat), pepOnAvailable],
      ...chat,
    }, options.setupRetry),
    pingRule, //                                            XEP-0199 server ping
    ownNodesRule, //                                        a client's raw pubsub on the proxy's nodes: forbidden
    carbonsRule, //                                         XEP-0280 (the copies come from §6)
    mucRule({ ...chat, ...(options.mucSweepInterval ? { sweepInterval: options.mucSweepInterval } : {}), ...(options.mucHistory ? { history: options.mucHistory } : {}), ...(options.mucPrefix ? { servicePrefix: options.mucPrefix } : {}) }), //                                       §5 MUC (before §6: nothing to its rooms is a chat)
    chatRule(chat), //                                      §6 one-to-one messages
    rosterRule, //                                          §4 roster
    subscriptionRule, //                                    §4, §8 subscriptions
    directedPresenceRule, //                                RFC 6121 §4.6 (through the backend's routing)
    pepRule(), //                                           XEP-0163 for contacts (sees broadcast presence for its caps first)
    presenceRule, //                                        §3 presence
  ];
}
