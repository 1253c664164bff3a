// What the §5 and §6 tests share: a backend of either kind behind a recording relay, and two proxy
// instances in front of it (ejabberd lets users create nodes on its pubsub service; Prosody only a
// component's admin, so there the proxies get the service account).
import type { Test } from 'tap';
import { startEjabberd } from './ejabberd.js';
import { startProsody } from './prosody.js';
import type { Config } from '../../src/config.js';
import { SERVICE_CONFIG, SERVICE_USER, startTestProxy, type RunningProxy } from './proxy.js';
import { startCapture, type Capture } from './capture.js';
import type { Backend } from './common.js';

export async function twoProxies(t: Test, kind: 'ejabberd' | 'prosody', users: Array<[string, string, string]>, overrides: Partial<Config> = {}): Promise<{ backend: Backend; cap: Capture; proxy: RunningProxy; other: RunningProxy }> {
  const backend: Backend = kind === 'ejabberd' ? await startEjabberd({ users }) : await startProsody({ users: [...users, SERVICE_USER] });
  t.teardown(() => backend.stop());
  const cap = await startCapture(backend.host, backend.port);
  t.teardown(() => cap.stop());
  const config = { upstreamTls: 'off' as const, ...(kind === 'prosody' ? SERVICE_CONFIG : {}), ...overrides };
  const proxy = await startTestProxy({ host: '127.0.0.1', port: cap.port }, config);
  t.teardown(() => proxy.stop());
  const other = await startTestProxy({ host: '127.0.0.1', port: cap.port }, config);
  t.teardown(() => other.stop());
  return { backend, cap, proxy, other };
}
