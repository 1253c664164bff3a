// The ordered rule table. The first rule to claim a stanza wins; a stanza nobody claims passes
// through unchanged. MUC (§5) and one-to-one chat (§6) come later.
import type { BackendName } from '../backends/profile.js';
import { accountRule } from './account.js';
import { directedPresenceRule } from './directed-presence.js';
import type { RetryPolicy } from './retry.js';
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
}

export function defaultRules(options: RuleOptions = {}): Rule[] {
  return [
    // login: profile, nodes, roster (first: the others need it); roster changes and initial presence
    // reach the others through the hooks (shared by all sessions: nothing registered per session).
    // Presence first: when a subscription ends, the contact's resources go unavailable before the
    // roster push and the presence that end it, as a server does (RFC 6121 §3.2.3, §3.3.3); a client
    // that ignores presence from non-contacts would otherwise never see them go.
    accountRule(options.backend ?? 'auto', {
      change: [presenceOnChange, rosterOnChange, subscriptionOnChange],
      available: [subscriptionOnAvailable],
    }, options.setupRetry),
    pingRule, //                                            XEP-0199 server ping
    rosterRule, //                                          §4 roster
    subscriptionRule, //                                    §4, §8 subscriptions
    directedPresenceRule, //                                RFC 6121 §4.6 (through the backend's routing)
    presenceRule, //                                        §3 presence
  ];
}
