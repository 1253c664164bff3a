// The account's roster cache (account.ts) when two sessions of one user write the same contact: the
// backend's order of the notifications decides, also when another session's write comes between one
// of ours and its echo (both of a user's online resources apply the same inbox item).
import t from 'tap';
import { Account } from '../src/rules/account.js';
import { newEntry, type RosterEntry } from '../src/rules/roster-item.js';
import { recordingContext } from './harness/recorder.js';

const ROMEO = 'romeo@montague.lit';

function account(): { a: Account; changes: Array<[string | undefined, string | undefined]> } {
  const changes: Array<[string | undefined, string | undefined]> = [];
  const rec = recordingContext('juliet@capulet.lit/balcony');
  const a = new Account(rec.ctx, { change: [(_a, prev, next) => changes.push([prev?.subscription, next?.subscription])], available: [] });
  return { a, changes };
}

const entry = (subscription: RosterEntry['subscription'], pendingIn = false): RosterEntry => ({ ...newEntry(ROMEO), subscription, pendingIn, listed: true });

t.test("another session's write between ours and its echo: ours is the node's content", async (t) => {
  const { a, changes } = account();
  await a.save(entry('from'));
  a.stored(ROMEO, entry('none', true)); // the other session's write, committed before ours
  t.equal(a.entry(ROMEO)?.subscription, 'none', 'applied when it arrives');
  a.stored(ROMEO, entry('from')); // our echo: the backend's last word
  t.equal(a.entry(ROMEO)?.subscription, 'from', 'our write is the last one');
  t.same(changes, [[undefined, 'from'], ['from', 'none'], ['none', 'from']], 'the listeners follow');
});

t.test('the echo of our write with nothing in between changes nothing', async (t) => {
  const { a, changes } = account();
  await a.save(entry('from'));
  a.stored(ROMEO, entry('from'));
  t.same(changes, [[undefined, 'from']]);
});

t.test('an older echo while a newer write of ours is pending does not roll back', async (t) => {
  const { a, changes } = account();
  await a.save(entry('from'));
  await a.save(entry('both'));
  a.stored(ROMEO, entry('from'));
  t.equal(a.entry(ROMEO)?.subscription, 'both');
  a.stored(ROMEO, entry('both'));
  t.same(changes, [[undefined, 'from'], ['from', 'both']]);
});
