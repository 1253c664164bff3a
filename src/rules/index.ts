// The ordered rule table. The first rule to claim a stanza wins; a stanza nobody claims passes
// through unchanged. Later issues add presence (§3), subscription and roster (§4, §8), MUC (§5) and
// one-to-one chat (§6) here.
import { pingRule } from './ping.js';
import type { Rule } from './types.js';

export type { Rule, RuleContext, Verdict } from './types.js';

export function defaultRules(): Rule[] {
  return [pingRule];
}
