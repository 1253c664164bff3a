// A set that keeps its `max` most recently used members: what a proxy remembers across sessions
// without growing with every account it has ever served.
import { ownString } from '../stream/chars.js';

export class RecentSet {
  private readonly members = new Set<string>();

  constructor(readonly max: number) {}

  /** Is `key` a member? A hit makes it the most recent. */
  has(key: string): boolean {
    if (!this.members.delete(key)) return false;
    this.members.add(key);
    return true;
  }

  add(key: string): void {
    if (this.members.delete(key)) {
      this.members.add(key);
      return;
    }
    // a copy: a key sliced from an input chunk would keep the whole chunk alive
    this.members.add(ownString(key));
    if (this.members.size > this.max) this.members.delete(this.members.values().next().value!);
  }

  get size(): number {
    return this.members.size;
  }
}
