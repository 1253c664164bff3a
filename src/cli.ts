// xep207-proxy command line: flags (commander), XEP207_* environment variables and --config file.json,
// merged and validated by config.ts. A bad value exits 2 with one line naming the flag.
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, OPTIONS, envName, fromEnv, fromFile, resolveConfig, type RawConfig } from './config.js';
import { createLogger } from './log.js';
import { Proxy } from './server.js';

function program(): Command {
  const cmd = new Command('xep207-proxy')
    .description('XMPP c2s proxy that maps legacy presence, roster, MUC and chat onto XEP-0060 pubsub (XEP-0207)')
    .version(process.env.npm_package_version ?? '0.1.0')
    .option('--config <file>', 'JSON file with any of the options below (keys in camelCase, e.g. "upstreamTls")')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .addHelpText('after', '\nEvery option can also come from the environment (flags win over the environment, which wins over --config):\n' +
      OPTIONS.map((o) => `  ${envName(o).padEnd(28)} ${o.envOnly ? `(no flag) ${o.description}` : o.flag}`).join('\n'));
  for (const spec of OPTIONS) {
    if (spec.envOnly) continue; // a secret is never a flag
    // defaults are applied by resolveConfig (after env and file), so they are only shown here
    const shown = spec.default !== undefined && spec.arg ? ` (default: ${spec.default})` : '';
    const arg = spec.arg ? (spec.optionalArg ? ` [${spec.arg}]` : ` <${spec.arg}>`) : '';
    cmd.addOption(new Option(spec.flag + arg, spec.description + (spec.optionalArg ? '' : shown)));
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
    const fileCfg = flags.config ? fromFile(flags.config) : {};
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
      log.info({ signal, sessions: proxy.sessions.size }, 'shutting down');
      proxy.close().then(() => {
        log.info('stopped');
        log.flush?.();
        setImmediate(() => process.exit(0));
      });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
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
