// Where `npm run demo` listens. Its users have well-known passwords, so it stays on loopback unless
// asked: a bare port keeps 127.0.0.1, only a `host:port` (e.g. 0.0.0.0:5222) opens it further.

/** The demo's --listen value from its argument (or XEP207_LISTEN): `[host:]port`, loopback by default. */
export function demoListen(arg: string | undefined): string {
  const v = arg ?? '5222';
  return /^[0-9]+$/.test(v) ? `127.0.0.1:${v}` : v;
}

/** Whether a listen value reaches beyond loopback. */
export function beyondLoopback(listen: string): boolean {
  return !/^(127\.[0-9.]+|localhost|\[::1\]):[0-9]+$/.test(listen);
}
