// At most `limit` tasks at once, the rest queued in arrival order. The login setup's node creations
// go through one per rule table: ejabberd aborts concurrent PEP node creations of different users
// ("Database failure": its Mnesia transactions collide), and 16 first logins at once spent more
// time in retries and their back-off than in the creations themselves (bench (e)).
export class Gate {
  private running = 0;
  private readonly queue: Array<() => void> = [];

  constructor(readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }
}
