-- Prosody 0.12 (Debian) for the tests: a pubsub-only backend, "mid" variant of
-- ../shared/research/BACKENDS.md (roster, offline and s2s disabled; mod_presence kept, because
-- without it bare-JID PEP notifications can never be delivered). Filled in by test/harness/prosody.ts:
-- @DIR@ is the run folder, @C2S_PORT@ a free loopback port, @STORAGE@ "internal" or "sql",
-- @TLS_PROTOCOL@ LuaSec's protocol ("tlsv1_2+" is Prosody's default; "tlsv1_2" forces TLS 1.2, where
-- Prosody 0.12 offers SCRAM-SHA-1-PLUS with tls-unique and rejects a SCRAM gs2 flag "y").
data_path = "@DIR@/data"
pidfile = "@DIR@/data/prosody.pid"
-- cert files named after the hosts (capulet.lit.crt/.key, montague.lit.crt/.key), key readable by prosody
certificates = "@DIR@/certs"
ssl = { protocol = "@TLS_PROTOCOL@" }
admins = { }

-- loopback only: one c2s port (STARTTLS), one HTTP port for XMPP over WebSocket (the --upstream ws:// tests)
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { @C2S_PORT@ }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { }
http_ports = { @HTTP_PORT@ }
http_interfaces = { "127.0.0.1" }
https_ports = { }

modules_enabled = { "pep"; "disco"; "ping"; "saslauth"; "tls"; "websocket"; }
-- loopback: a ws:// session counts as encrypted, as c2s here does not require it either
consider_websocket_secure = true
-- a roster is one item per contact in a PEP node: allow more than the default 256 items per node
pep_max_items = 5000
modules_disabled = { "roster"; "offline"; "s2s"; }

-- the proxy talks STARTTLS to us (verifying the test CA), but plaintext must work too
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
s2s_require_encryption = false
authentication = "internal_hashed"

storage = "@STORAGE@"
sql = { driver = "SQLite3", database = "prosody.sqlite" }

log = {
  { levels = { min = "@LOGLEVEL@" }, to = "file", filename = "@DIR@/logs/prosody.log" };
  { levels = { min = "warn" }, to = "console" };
}

VirtualHost "capulet.lit"
VirtualHost "montague.lit"

-- only a component's admins may create nodes there (BACKENDS.md): the proxy's service account
-- (SERVICE_USER in test/harness/proxy.ts is proxy@capulet.lit)
Component "pubsub.capulet.lit" "pubsub"
  admins = { "proxy@capulet.lit" }

Component "pubsub.montague.lit" "pubsub"
  admins = { "proxy@montague.lit", "proxy@capulet.lit" }
