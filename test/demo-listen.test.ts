// npm run demo's listen address: loopback unless a host is named (its passwords are well known).
import t from 'tap';
import { beyondLoopback, demoListen } from '../scripts/demo-listen.js';
import { parseListen } from '../src/config.js';

t.test('the demo listens on loopback unless a host is named', async (t) => {
  const cases: Array<[string | undefined, string, boolean]> = [
    [undefined, '127.0.0.1:5222', false],
    ['5223', '127.0.0.1:5223', false],
    ['0.0.0.0:5222', '0.0.0.0:5222', true],
    ['[::]:5222', '[::]:5222', true],
    ['[::1]:5222', '[::1]:5222', false],
    ['192.0.2.7:5222', '192.0.2.7:5222', true],
  ];
  for (const [arg, listen, open] of cases) {
    t.equal(demoListen(arg), listen, `${arg ?? '(none)'} -> ${listen}`);
    t.equal(beyondLoopback(listen), open, `${listen}: ${open ? 'beyond' : 'only'} loopback`);
    t.ok(parseListen(listen).port > 0, `${listen} is a valid --listen`);
  }
  t.equal(parseListen(demoListen(undefined)).host, '127.0.0.1', 'the proxy gets the loopback host');
});
