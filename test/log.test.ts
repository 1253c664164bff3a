// The CLI's log destination (src/log.ts batchedStdout): lines of a short while are written together,
// in order, none lost at flush, exit or crash.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOG_FLUSH_MS, batchedStdout } from '../src/log.js';
import { ROOT } from './harness/common.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);

t.test('lines wait up to LOG_FLUSH_MS and go out together, in order', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'xep207-log-')), 'out');
  const fd = openSync(file, 'w');
  t.teardown(() => closeSync(fd));
  const d = batchedStdout(fd);
  d.write('{"n":1}\n');
  d.write('{"n":2}\n');
  d.write('{"n":3}\n');
  await sleep(5);
  t.same(lines(file), [], 'nothing written at once');
  await sleep(LOG_FLUSH_MS + 200);
  t.same(lines(file), ['{"n":1}', '{"n":2}', '{"n":3}'], `written within ${LOG_FLUSH_MS} ms, in order`);
  for (let i = 0; i < 3000; i++) d.write(`{"m":${i},"pad":"${'x'.repeat(40)}"}\n`); // well over the batch size
  await new Promise<void>((resolve) => d.flush(() => resolve()));
  const all = lines(file);
  t.equal(all.length, 3003, 'flush(cb): every line written when cb runs');
  t.ok(all.slice(3).every((l, i) => JSON.parse(l).m === i), 'in order');
});

for (const end of ['exit', 'throw'] as const) {
  t.test(`a process that ends at once (${end}) has written every line`, async (t) => {
    const child = join(ROOT, 'test', 'harness', 'log-child.ts');
    // under the batch size: all of it is still waiting when the process ends
    const r = spawnSync(process.execPath, [...process.execArgv, child, '100', end], { encoding: 'utf8', timeout: 20_000 });
    const got = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { i: number; msg: string });
    t.equal(got.length, 100, `100 lines on stdout (exit code ${r.status})`);
    t.ok(got.every((l, i) => l.i === i && l.msg === 'line'), 'in order');
    if (end === 'throw') t.match(r.stderr, /crash after logging/, 'and the crash on stderr');
  });
}
