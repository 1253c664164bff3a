// Issue 9 point 7: the container image, without a container runtime. The Dockerfile is read here
// and its final stage's command line (ENTRYPOINT), environment (ENV) and HEALTHCHECK are run
// directly, /app standing for this checkout, in front of a real ejabberd and a real Prosody: what the image does when
// started is what this test does. The build itself is checked as far as it can be without Docker:
// what the stages copy exists, the build stage's TypeScript project compiles, the run stage takes
// production dependencies only and is not root.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OPTIONS, envName } from '../src/config.js';
import { CERTS, ROOT, freePort } from './harness/common.js';
import { startEjabberd } from './harness/ejabberd.js';
import { startProsody } from './harness/prosody.js';
import { cleanEnv, start } from './harness/cli.js';
import { connect, xml } from './harness/xmpp.js';
import { parsePrometheus, sample } from './harness/admin.js';

const run = promisify(execFile);

interface Stage {
  from: string;
  lines: Array<{ op: string; args: string }>;
}

/** The Dockerfile's stages, instructions joined across line continuations, comments dropped. */
function dockerfile(): Stage[] {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages: Stage[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [, op, args] = /^(\S+)\s+(.*)$/.exec(line)!;
    if (op!.toUpperCase() === 'FROM') stages.push({ from: args!, lines: [] });
    else stages.at(-1)!.lines.push({ op: op!.toUpperCase(), args: args! });
  }
  return stages;
}

const instr = (stage: Stage, op: string) => stage.lines.filter((l) => l.op === op).map((l) => l.args);

/** ENV k=v k2=v2 (no quoting is used in ours) */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const args of instr(stage, 'ENV')) for (const kv of args.split(/\s+/)) env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1);
  return env;
}

/** an exec-form command of the image, for this machine: node is this node, /app this checkout */
function local(argv: string[]): string[] {
  return argv.map((a) => (a === 'node' ? process.execPath : a.replace(/^\/app\//, ROOT + '/')));
}

const stages = dockerfile();
const final = stages.at(-1)!;

t.test('the Dockerfile: multi-stage, slim Node 20, production dependencies, not root, health check', async (t) => {
  t.ok(stages.length >= 2, 'several stages');
  t.match(final.from, /^node:20[-.\w]*-slim$/, 'runs on a slim Node 20');
  t.ok(stages.slice(0, -1).some((s) => instr(s, 'RUN').some((r) => /^npm ci( --ignore-scripts)?$/.test(r))), 'a build stage with every dependency');
  t.ok(stages.slice(0, -1).some((s) => instr(s, 'RUN').some((r) => /npm ci --omit=dev/.test(r))), 'a stage with the production dependencies only');
  t.ok(instr(final, 'COPY').some((c) => /^--from=deps \S*node_modules/.test(c)), 'the image takes its node_modules from that stage');
  t.notOk(instr(final, 'RUN').some((r) => /npm (ci|install)(?!.*--omit=dev)/.test(r)), 'no dev dependencies installed in the image');
  const user = instr(final, 'USER');
  t.equal(user.length, 1);
  t.notMatch(user[0]!, /^(root|0)(:|$)/, 'not root');
  t.match(instr(final, 'HEALTHCHECK')[0]!, /CMD \[.*"\/healthz"\]$/, 'HEALTHCHECK on /healthz');
  for (const k of Object.keys(envOf(final)).filter((k) => k.startsWith('XEP207_'))) {
    t.ok(OPTIONS.some((o) => envName(o) === k), `${k} is a setting of the proxy`);
  }
  // every COPY source from the build context exists (a renamed folder breaks the build)
  for (const s of stages) {
    for (const c of instr(s, 'COPY').filter((c) => !c.startsWith('--from'))) {
      const parts = c.split(/\s+/);
      for (const src of parts.slice(0, -1)) t.ok(existsSync(join(ROOT, src)), `COPY ${src} exists`);
    }
  }
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const p of ['node_modules', 'dist', '.git']) t.ok(ignored.includes(p), `.dockerignore leaves out ${p}`);
  // the build stage compiles its project (what `RUN npx tsc -p tsconfig.build.json` does)
  const tsc = instr(stages[0]!, 'RUN').find((r) => r.includes('tsc'))!;
  t.match(tsc, /tsconfig\.build\.json/);
  await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--noEmit'], { cwd: ROOT, timeout: 240_000 });
  t.pass('tsconfig.build.json compiles');
});

for (const kind of ['ejabberd', 'prosody'] as const) t.test(`the image's command and environment in front of ${kind}`, async (t) => {
  const users: Array<[string, string, string]> = [['juliet', 'capulet.lit', 'secret']];
  const backend = kind === 'ejabberd' ? await startEjabberd({ users }) : await startProsody({ users });
  t.teardown(() => backend.stop());
  const entrypoint = local(JSON.parse(instr(final, 'ENTRYPOINT')[0]!) as string[]);
  const health = local(JSON.parse(/CMD (\[.*\])$/.exec(instr(final, 'HEALTHCHECK')[0]!)![1]!) as string[]);
  const [port, adminPort] = [await freePort(), await freePort()];
  // what an operator adds (docs/deploy.md): the backend, its CA and a certificate; the two ports are
  // moved off 5222/9207 only because other tests may hold them on this machine
  const env = {
    ...envOf(final),
    XEP207_UPSTREAM: `tcp://127.0.0.1:${backend.port}`,
    XEP207_UPSTREAM_CA: join(CERTS, 'ca.pem'),
    XEP207_TLS_CERT: join(CERTS, 'cert.pem'),
    XEP207_TLS_KEY: join(CERTS, 'key.pem'),
    XEP207_LISTEN: `127.0.0.1:${port}`,
    XEP207_ADMIN_LISTEN: `0.0.0.0:${adminPort}`,
  };
  const proc = start([], env, entrypoint);
  t.teardown(() => proc.child.kill('SIGKILL'));
  const listening = await proc.waitLog((l) => l.msg === 'listening');
  t.equal(listening.listen, `127.0.0.1:${port}`);
  await proc.waitLog((l) => l.msg === 'admin listening');
  const ask = (path: string) => run(health[0]!, [...health.slice(1, -1), path], { env: { ...cleanEnv(), ...env }, timeout: 10_000 });
  const hc = await run(health[0]!, health.slice(1), { env: { ...cleanEnv(), ...env }, timeout: 10_000 });
  t.equal(hc.stdout, 'ok\n', 'the HEALTHCHECK command exits 0');
  const c = await connect({ port, domain: 'capulet.lit', username: 'juliet', password: 'secret', resource: 'container' });
  const pong = await c.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  t.equal(pong.attrs.type, 'result', 'a client is served');
  t.match(JSON.parse((await ask('/readyz')).stdout), { ready: true }, 'ready');
  const metrics = parsePrometheus((await ask('/metrics')).stdout).samples;
  t.equal(sample(metrics, 'xep207_sessions', { transport: 'tcp' }), 1, 'metrics');
  t.equal(JSON.parse((await ask('/trace')).stdout).trace.length, 0);
  const closed = new Promise<string>((resolve) => c.on('error', (e: { condition?: string }) => resolve(e.condition ?? String(e))));
  proc.child.kill('SIGTERM'); // `docker stop`
  t.equal(await closed, 'system-shutdown');
  t.equal(await proc.exited, 0, 'exit 0');
  await ask('/healthz').then(
    () => t.fail('the health check passes after the exit'),
    () => t.pass('the health check fails once the proxy is gone'),
  );
  t.notOk(proc.lines.some((l) => 'stderr' in l), 'nothing on stderr');
});
