// The Python client scripts (test/clients/*.py, Debian's python3-slixmpp and python3-aioxmpp): run
// one scenario, read its JSON lines, judge the run.
import type { Test } from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CERTS, ROOT, ensurePackage } from './common.js';

/** Debian's interpreter: the one with python3-slixmpp and python3-aioxmpp (not a pyenv python3 on PATH) */
const PYTHON = '/usr/bin/python3';
const CLIENTS = join(ROOT, 'test', 'clients');
const DIST = '/usr/lib/python3/dist-packages';

/** Install the Python stacks where they are missing (as root; see common.ts). */
export function ensurePythonStacks(): void {
  ensurePackage(join(DIST, 'slixmpp', '__init__.py'), ['python3-slixmpp']);
  ensurePackage(join(DIST, 'aioxmpp', '__init__.py'), ['python3-aioxmpp']);
}

export interface Ev {
  event: string;
  client?: string | null;
  [key: string]: unknown;
}

export interface PyRun {
  code: number | null;
  events: Ev[];
  stderr: string;
  /** the first event of that name (and client, and other fields) */
  get(event: string, match?: Record<string, unknown>): Ev | undefined;
  all(event: string, match?: Record<string, unknown>): Ev[];
}

/** XEP207_PY_DEBUG=1: the libraries' debug logs on stderr (shown on failure); XEP207_PY_EVENTS=1: every event in the TAP output */
const debug = !!process.env.XEP207_PY_DEBUG;
const showEvents = !!process.env.XEP207_PY_EVENTS;

/** Run a multi-client scenario script (test/clients/*_roster.py, *_chat.py, *_muc.py). */
export function runPy(script: string, password: string, args: string[], timeoutS = 90): Promise<PyRun> {
  return runScript(script, [...args, '--password', password, '--ca', join(CERTS, 'ca.pem'), '--timeout', String(timeoutS), ...(debug ? ['--debug'] : [])], timeoutS);
}

/** Run test/clients/`script` with `args`; its JSON lines become events. It ends itself after `timeoutS`. */
export function runScript(script: string, args: string[], timeoutS: number): Promise<PyRun> {
  const argv = [join(CLIENTS, script), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    // the script ends itself after timeoutS; this only catches a hung interpreter
    const killer = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 30) * 1000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(killer);
      const events: Ev[] = [];
      for (const line of out.split('\n')) {
        if (!line.trim()) continue;
        try {
          events.push(JSON.parse(line) as Ev);
        } catch {
          err += `\n(unparsed stdout) ${line}`;
        }
      }
      const matches = (e: Ev, event: string, m: Record<string, unknown>) => e.event === event && Object.entries(m).every(([k, v]) => e[k] === v);
      resolve({
        code,
        events,
        stderr: err,
        get: (event, m = {}) => events.find((e) => matches(e, event, m)),
        all: (event, m = {}) => events.filter((e) => matches(e, event, m)),
      });
    });
  });
}

/** The run succeeded as a whole: every step happened in time. */
export function completed(t: Test, r: PyRun): void {
  const timeout = r.get('timeout') ?? r.get('failed');
  t.notOk(timeout, timeout ? `step not reached: ${JSON.stringify(timeout)}` : 'every step happened in time');
  t.equal(r.code, 0, 'python exit status 0');
}

/** After a subtest's assertions: if any failed, everything the clients printed goes to the TAP output. */
export function report(t: Test, r: PyRun): void {
  if (!t.passing() || showEvents) t.comment(r.events.map((e) => JSON.stringify(e)).join('\n') + '\n' + r.stderr.slice(-6000));
}

