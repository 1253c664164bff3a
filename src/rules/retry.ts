// Retrying the proxy's own requests when the backend's error may pass. Under a burst of first
// logins ejabberd 23.01 aborts concurrent node creations inside mod_pubsub (a Mnesia `cyclic`
// abort on its node index, answered `internal-server-error` "Database failure"), and a loaded
// backend may not answer in time. Such a request works when sent again a little later; sessions
// that collided must not collide again at once, hence exponential backoff with full jitter (each
// delay uniform in [0, min(cap, base * 2^n)]). Errors that will not change are not retried.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { StanzaError } from '../xmpp/stanza-error.js';

export interface RetryPolicy {
  /** tries of one step, the first one included */
  attempts: number;
  /** the first delay's upper bound; doubled for each further retry */
  baseMs: number;
  /** no delay's upper bound exceeds this */
  capMs: number;
  /** every step together, retries and waits included, ends within this */
  budgetMs: number;
}

/**
 * The account setup at login. Measured on ejabberd with 16 first logins at a time, an aborted
 * creation goes through at its first or second retry: 6 tries leave a wide margin without
 * hammering a backend that is really down. 150 ms is a few backend transactions; the cap keeps a
 * late retry from waiting longer than a retry is worth. The budget bounds what the client waits
 * for (its stanzas are held until the setup is done; xmpp.js, for one, gives up on an iq after
 * 30 s) and still leaves room for a retry after one request timed out at the default 15 s.
 */
export const SETUP_RETRY: RetryPolicy = { attempts: 6, baseMs: 150, capMs: 3000, budgetMs: 18_000 };

const TRANSIENT = new Set(['internal-server-error', 'remote-server-timeout', 'resource-constraint']);

/**
 * May the same request work a little later? `internal-server-error` is not `wait` in RFC 6120, but
 * it is what a backend answers for a failed transaction; `remote-server-timeout` is also the proxy's
 * own request time-out (tracker.ts). A closed session (`remote-server-not-found`), `forbidden`,
 * `not-allowed` and the like stay as they are.
 */
export function isTransient(err: unknown): boolean {
  return err instanceof StanzaError && (err.type === 'wait' || TRANSIENT.has(err.condition));
}

/** One budget for the steps of one task: each step is retried on its own, all end by the deadline. */
export class RetryBudget {
  private readonly deadline: number;
  /** retries made so far, every step counted */
  retries = 0;

  constructor(
    private readonly policy: RetryPolicy,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
  ) {
    this.deadline = Date.now() + policy.budgetMs;
  }

  /** Run `fn` until it succeeds, fails for good, runs out of tries or the budget runs out. */
  async run<T>(step: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.bounded(fn);
      } catch (err) {
        const delay = this.random() * Math.min(this.policy.capMs, this.policy.baseMs * 2 ** (attempt - 1));
        if (!isTransient(err) || attempt >= this.policy.attempts || Date.now() + delay >= this.deadline) throw err;
        this.retries++;
        this.log.info({ step, attempt, delayMs: Math.round(delay), err: String(err) }, 'transient backend error, retrying');
        await sleep(delay);
      }
    }
  }

  /** `fn`, but rejected when the budget ends first (a late answer is dropped by the tracker). */
  private bounded<T>(fn: () => Promise<T>): Promise<T> {
    const left = this.deadline - Date.now();
    const expired = () => new StanzaError('remote-server-timeout', `no success within ${this.policy.budgetMs} ms`);
    if (left <= 0) return Promise.reject(expired());
    let timer: NodeJS.Timeout | undefined;
    const expiry = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(expired()), left)));
    return Promise.race([fn(), expiry]).finally(() => clearTimeout(timer));
  }
}

/**
 * One request of a rule's own that may hit the same transient errors as the login setup (node
 * creations during a burst of first logins): retried under the setup's policy.
 */
export function retrying<T>(log: Logger, step: string, fn: () => Promise<T>): Promise<T> {
  return new RetryBudget(SETUP_RETRY, log).run(step, fn);
}
