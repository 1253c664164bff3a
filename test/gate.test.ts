// rules/gate.ts: at most `limit` tasks at once, the others started in arrival order, a failure
// releasing its place like a success.
import t from 'tap';
import { Gate } from '../src/rules/gate.js';

const tick = () => new Promise((r) => setImmediate(r));

t.test('limit and order', async (t) => {
  const gate = new Gate(2);
  let running = 0;
  let peak = 0;
  const started: number[] = [];
  const release: Array<() => void> = [];
  const tasks = [0, 1, 2, 3, 4].map((i) =>
    gate.run(async () => {
      started.push(i);
      peak = Math.max(peak, ++running);
      await new Promise<void>((r) => release.push(r));
      running--;
      if (i === 1) throw new Error('task 1 fails');
      return i;
    }),
  );
  const settled = Promise.allSettled(tasks);
  await tick();
  t.same(started, [0, 1], 'two at once');
  release.shift()!();
  await tick();
  t.same(started, [0, 1, 2], 'the next one when a place is free');
  release.shift()!(); // task 1 fails: its place is freed too
  await tick();
  t.same(started, [0, 1, 2, 3]);
  while (release.length > 0 || started.length < 5) {
    release.shift()?.();
    await tick();
  }
  const results = await settled;
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
  t.equal(peak, 2, 'never more than the limit');
});
