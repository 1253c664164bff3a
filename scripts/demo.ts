// npm run demo: a private ejabberd (Debian package, loopback, temporary folder) with two users, and
// the proxy in front of it, for trying the proxy with any XMPP client: on 127.0.0.1:5222, another
// port with `npm run demo -- 5223`, another interface only when named (`npm run demo -- 0.0.0.0:5222`).
// Ctrl-C stops both. Users: juliet@capulet.lit and romeo@montague.lit, password "secret".
import { startEjabberd } from '../test/harness/ejabberd.js';
import { CERTS } from '../test/harness/common.js';
import { join } from 'node:path';
import { Proxy } from '../src/server.js';
import { resolveConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { beyondLoopback, demoListen } from './demo-listen.js';

const listen = demoListen(process.argv[2] ?? process.env.XEP207_LISTEN);
const backend = await startEjabberd({ users: [['juliet', 'capulet.lit', 'secret'], ['romeo', 'montague.lit', 'secret']], loglevel: 'warning' });
const config = resolveConfig({
  listen,
  upstream: `tcp://127.0.0.1:${backend.port}`,
  upstreamCa: join(CERTS, 'ca.pem'),
  tlsCert: join(CERTS, 'cert.pem'),
  tlsKey: join(CERTS, 'key.pem'),
  logPretty: true,
});
const log = createLogger({ level: config.logLevel, pretty: true });
const proxy = new Proxy({ config, log });
const addr = await proxy.listen();
if (beyondLoopback(listen)) log.warn(`demo: listening on ${listen}, beyond loopback, with well-known passwords`);
log.info(
  `demo: ejabberd on 127.0.0.1:${backend.port} (run folder ${backend.dir}); proxy on ${addr.address}:${addr.port}. ` +
    `Log in as juliet@capulet.lit or romeo@montague.lit, password "secret", server 127.0.0.1 port ${addr.port} ` +
    `(the test CA is test/certs/ca.pem). Ctrl-C stops.`,
);
let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, async () => {
    if (stopping) return;
    stopping = true;
    await proxy.close();
    await backend.stop();
    process.exit(0);
  });
}
