// What the lanes of one direction did, summed over every session of a proxy: per rule, the stanzas
// it claimed (and how long it took them), the stanzas it failed on; the stanzas no rule claimed.
// Plain numbers in arrays made once per proxy, so counting costs the hot path an increment and
// allocates nothing; the metrics endpoint reads them when scraped (src/admin/metrics.ts).
import type { Rule } from '../rules/types.js';

/** Upper bounds (seconds) of the rewrite duration buckets: from a synchronous rewrite to a slow backend. */
export const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class LaneTally {
  readonly names: readonly string[];
  readonly claimed: number[];
  readonly failed: number[];
  passed = 0;
  /** per rule, DURATION_BUCKETS.length + 1 counts (the last: above every bound), not cumulative */
  readonly buckets: Float64Array;
  /** per rule, the sum of the durations in seconds */
  readonly seconds: Float64Array;

  constructor(rules: readonly Rule[]) {
    this.names = rules.map((r) => r.name);
    this.claimed = rules.map(() => 0);
    this.failed = rules.map(() => 0);
    this.buckets = new Float64Array(rules.length * (DURATION_BUCKETS.length + 1));
    this.seconds = new Float64Array(rules.length);
  }

  /** rule `i` claimed a stanza after `ms` milliseconds */
  claim(i: number, ms: number): void {
    this.claimed[i]!++;
    const s = ms / 1000;
    this.seconds[i]! += s;
    let b = 0;
    while (b < DURATION_BUCKETS.length && s > DURATION_BUCKETS[b]!) b++;
    this.buckets[i * (DURATION_BUCKETS.length + 1) + b]!++;
  }
}
