// The service account (--service-jid): its configuration.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, fromEnv, fromFile, resolveConfig } from '../src/config.js';
import { ROOT } from './harness/common.js';

const UPSTREAM = 'tcp://127.0.0.1:5222';

const configError = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return 'no error';
};

t.test('configuration: --service-jid, --service-password-file, XEP207_SERVICE_PASSWORD', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xep207-svc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'password');
  writeFileSync(file, 'from-file\n');
  const jid = { upstream: UPSTREAM, serviceJid: 'proxy@Capulet.lit' };
  const fromF = resolveConfig({ ...jid, servicePasswordFile: file });
  t.equal(fromF.serviceJid, 'proxy@capulet.lit', 'the JID, domain normalised');
  t.equal(fromF.servicePassword, 'from-file', 'the file without its final line break');
  t.equal(resolveConfig(jid, fromEnv({ XEP207_SERVICE_PASSWORD: 'from-env' })).servicePassword, 'from-env');
  t.notOk('serviceJid' in resolveConfig({ upstream: UPSTREAM }), 'default: no service account');

  t.match(configError(() => resolveConfig(jid)), /^--service-jid: needs a password/);
  for (const bad of ['capulet.lit', 'proxy@capulet.lit/res', 'a@b@c', '@capulet.lit']) {
    t.match(configError(() => resolveConfig({ upstream: UPSTREAM, serviceJid: bad, servicePassword: 'x' })), /^--service-jid: expected a bare JID with a localpart/, bad);
  }
  t.match(configError(() => resolveConfig({ ...jid, servicePasswordFile: file, servicePassword: 'x' })), /^--service-password-file: .* not both/);
  t.match(configError(() => resolveConfig({ upstream: UPSTREAM, servicePassword: 'x' })), /^--service-jid: required/);
  t.match(configError(() => resolveConfig({ ...jid, servicePasswordFile: join(dir, 'none') })), /^--service-password-file: cannot read .*ENOENT/);
  writeFileSync(join(dir, 'empty'), '\n');
  t.match(configError(() => resolveConfig({ ...jid, servicePasswordFile: join(dir, 'empty') })), /is empty/);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ servicePassword: 'x' }));
  t.match(configError(() => fromFile(join(dir, 'config.json'))), /read from XEP207_SERVICE_PASSWORD only/, 'never from the JSON file');
});

t.test('CLI: no password exits 2 with one line; the password is no flag', async (t) => {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('XEP207_')) delete env[k];
  const cli = (args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin', 'xep207-proxy'), '--upstream', UPSTREAM, ...args], { encoding: 'utf8', env, timeout: 20_000 });
  const r = cli(['--service-jid', 'proxy@capulet.lit']);
  t.equal(r.status, 2);
  t.equal(r.stderr, 'xep207-proxy: error: --service-jid: needs a password: --service-password-file file or XEP207_SERVICE_PASSWORD\n');
  const flag = cli(['--service-jid', 'proxy@capulet.lit', '--service-password', 'x']);
  t.equal(flag.status, 2);
  t.match(flag.stderr, /unknown option '--service-password'/);
  const help = cli(['--help']);
  for (const s of ['--service-jid <jid>', '--service-password-file <file>', 'XEP207_SERVICE_PASSWORD', 'XEP207_SERVICE_JID']) t.match(help.stdout, s);
});
