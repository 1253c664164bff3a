// xep207-proxy command line: flags (commander), XEP207_* environment variables and --config file.json
// (or XEP207_CONFIG), merged and validated by config.ts. A bad value exits 2 with one line naming the
// flag. Signals: SIGTERM and SIGINT drain (Proxy.drain), SIGHUP reloads the TLS certificate.
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, OPTIONS, envName, fromEnv, fromFile, resolveConfig, type RawConfig } from './config.js';
import { createLogger } from './log.js';
import { Proxy } from './server.js';

function program(): Command {
  const cmd = new Command('xep207-proxy')
    .description('XMPP c2s proxy that maps legacy presence, roster, MUC and chat onto XEP-0060 pubsub (XEP-0207)')
    .version(process.env.npm_package_version ?? '0.1.0')
    .option('--config <file>', 'JSON file with any of the options below (keys in camelCase, e.g. "upstreamTls"); env XEP207_CONFIG')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .addHelpText('after', '\nEvery option can also come from the environment (flags win over the environment, which wins over --config):\n' +
      [`  ${'XEP207_CONFIG'.padEnd(28)} --config`, ...OPTIONS.map((o) => `  ${envName(o).padEnd(28)} ${o.envOnly ? `(no flag) ${o.description}` : o.flag}${o.repeatable ? ' (several: separated by commas or spaces)' : ''}`)].join('\n') +
      '\n\nSignals: SIGTERM or SIGINT drains (every session published unavailable, then <system-shutdown/>, within --drain-timeout) and exits 0;\n' +
      'SIGHUP reloads --tls-cert and --tls-key for new connections without dropping sessions.');
  for (const spec of OPTIONS) {
    if (spec.envOnly) continue; // a secret is never a flag
    // defaults are applied by resolveConfig (after env and file), so they are only shown here
    const shown = spec.default !== undefined && spec.arg ? ` (default: ${spec.default})` : '';
    const arg = spec.arg ? (spec.optionalArg ? ` [${spec.arg}]` : ` <${spec.arg}>`) : '';
    const option = new Option(spec.flag + arg, spec.description + (spec.optionalArg ? '' : shown));
    if (spec.repeatable) option.argParser((v: string, previous: string[] | undefined) => [...(previous ?? []), v]);
    cmd.addOption(option);
  }
  return cmd;
}

export async function main(argv = process.argv): Promise<void> {
  const cmd = program();
  let flags: RawConfig & { config?: string };
  try {
    cmd.parse(argv);
    flags = cmd.opts();
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    throw err;
  }
  let proxy: Proxy;
  try {
    const file = flags.config ?? process.env.XEP207_CONFIG;
    const fileCfg = file ? fromFile(file) : {};
    const { config: _file, ...cliFlags } = flags;
    void _file;
    const config = resolveConfig(cliFlags, fromEnv(process.env), fileCfg);
    const log = createLogger({ level: config.logLevel, pretty: config.logPretty });
    proxy = new Proxy({ config, log });
    await proxy.listen();
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, sessions: proxy.sessions.size, drainTimeoutMs: config.drainTimeout }, 'shutting down');
      proxy.drain().then(() => {
        log.info('stopped');
        // the last lines written before exit (a stdout that takes no more: exit after a second anyway)
        const exit = () => process.exit(0);
        setTimeout(exit, 1000).unref();
        log.flush(exit);
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    // certificate renewal (cert-manager, certbot hooks): new connections get the new files
    process.on('SIGHUP', () => {
      try {
        if (!proxy.reloadTls()) log.warn('SIGHUP: no --tls-cert to reload');
      } catch (err) {
        log.error({ err: (err as Error).message }, 'SIGHUP: TLS certificate not reloaded, the old one stays');
      }
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`xep207-proxy: error: ${err.message}\n`);
      process.exit(2);
    }
    const e = err as NodeJS.ErrnoException & { flag?: string };
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
      process.stderr.write(`xep207-proxy: error: ${e.flag ?? '--listen'}: ${e.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
