// The client side of the idle-session benchmark, in its own process: opens sessions through a
// middlebox (login + bind), keeps them open and silent, closes them on request.
//
//   node dist/bench/idle-clients.js   (commands over IPC: open {port, count, concurrency}, closeAll)
import type net from 'node:net';
import { connect, login, pool, serveParent } from './common.js';

const open: net.Socket[] = [];
let seq = 0;

serveParent(
  {
    open: async (msg) => {
      const port = msg.port as number;
      const count = msg.count as number;
      const concurrency = (msg.concurrency as number | undefined) ?? 100;
      const t0 = Date.now();
      await pool(Array.from({ length: count }, (_, i) => i), concurrency, async () => {
        const n = ++seq;
        const s = await connect(port);
        await login(s, 'capulet.lit', `idle${n}`, 'secret', `r${n}`);
        s.on('error', () => undefined);
        open.push(s);
      });
      return { opened: count, total: open.length, ms: Date.now() - t0 };
    },
    closeAll: async () => {
      for (const s of open.splice(0)) s.destroy();
      return { total: 0 };
    },
  },
  () => open.length,
);
process.send!({ type: 'ready' });
