// Library entry point: embed the proxy (tests, the benchmark, a custom rule table).
export { Proxy, startProxy, type ProxyOptions } from './server.js';
export { makeConfig, resolveConfig, ConfigError, type Config } from './config.js';
export { createLogger, silentLogger } from './log.js';
export { defaultRules, type Rule, type RuleContext, type Verdict } from './rules/index.js';
export type { ServiceRequester } from './rules/types.js';
export { ServiceAccount, type ServiceAccountOptions, type ServiceState } from './service/account.js';
export { Stanza, stanzaOf } from './stream/stanza.js';
export { xml, parseElement, Element } from './stream/xml.js';
export { StanzaError, errorReply } from './xmpp/stanza-error.js';
