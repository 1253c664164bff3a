#!/usr/bin/python3
"""A real aioxmpp client (Debian python3-aioxmpp 0.13, pyOpenSSL TLS) for the proxy tests.

Usage: aioxmpp_client.py HOST PORT JID PASSWORD [MECHANISM] [--ca FILE] [--timeout SECONDS]

Connects to HOST:PORT with STARTTLS (required; the server certificate is verified with the test CA
for the JID's domain), logs in with aioxmpp's own choice of mechanism (SCRAM with the strongest hash
offered, else PLAIN) or only MECHANISM if given, then asks the server domain for disco#info and
pings it (XEP-0199). Prints one JSON object per line, like slixmpp_client.py:
  {"event": "sasl", "mechanism": "SCRAM-SHA-512", "gs2": "n,,"}
  {"event": "login", "ok": true, "jid": "juliet@capulet.lit/..."}
  {"event": "login", "ok": false, "error": "AuthenticationFailure", "condition": "not-authorized"}
  {"event": "disco", "type": "result", "features": [...], "identities": [[category, type, name], ...]}
  {"event": "ping", "type": "result"}
  {"event": "done", "ok": true}
Exit status 0 when everything succeeded, 1 otherwise.

aioxmpp 0.13 only uses aiosasl.SCRAM (never SCRAM-PLUS, gs2 flag "n") and PLAIN (over TLS only).
"""
import argparse
import asyncio
import logging
import sys

import aiosasl
import aioxmpp
import aioxmpp.connector
import aioxmpp.disco
import aioxmpp.errors
import aioxmpp.ping
import aioxmpp.security_layer
import OpenSSL.SSL

from aioxmpp_common import make_security_layer
from common import DEFAULT_CA, emit

# report the mechanism and the gs2 header each SASL exchange starts with
_orig_initiate = aiosasl.SASLStateMachine.initiate


async def _initiate(self, mechanism, payload=None):
    info = {'mechanism': mechanism}
    if payload and mechanism.startswith('SCRAM-'):
        parts = payload.split(b',', 2)
        info['gs2'] = (parts[0] + b',' + parts[1] + b',').decode()
    emit(event='sasl', **info)
    return await _orig_initiate(self, mechanism, payload)


aiosasl.SASLStateMachine.initiate = _initiate


async def run(args):
    jid = aioxmpp.JID.fromstr(args.jid)
    client = aioxmpp.Client(
        jid,
        make_security_layer(args.password, args.ca, args.mechanism),
        override_peer=[(args.host, args.port, aioxmpp.connector.STARTTLSConnector())],
    )
    ok = True
    try:
        async with client.connected() as stream:
            emit(event='login', ok=True, jid=str(client.local_jid))
            domain = client.local_jid.replace(localpart=None, resource=None)
            disco = client.summon(aioxmpp.DiscoClient)
            try:
                info = await disco.query_info(domain, require_fresh=True, timeout=10)
                emit(event='disco', type='result', features=sorted(info.features),
                     identities=[[i.category, i.type_, i.name] for i in info.identities])
            except aioxmpp.errors.XMPPError as e:
                ok = False
                emit(event='disco', type='error', condition=e.condition.value[1] if hasattr(e.condition, 'value') else str(e.condition))
            except asyncio.TimeoutError:
                ok = False
                emit(event='disco', type='timeout')
            try:
                iq = aioxmpp.IQ(type_=aioxmpp.IQType.GET, to=domain, payload=aioxmpp.ping.Ping())
                await asyncio.wait_for(stream.send(iq), 10)
                emit(event='ping', type='result')
            except aioxmpp.errors.XMPPError as e:
                ok = False
                emit(event='ping', type='error', condition=e.condition.value[1] if hasattr(e.condition, 'value') else str(e.condition))
            except asyncio.TimeoutError:
                ok = False
                emit(event='ping', type='timeout')
    except aiosasl.AuthenticationFailure as e:
        emit(event='login', ok=False, error='AuthenticationFailure', condition=getattr(e, 'opaque_error', None), text=e.text)
        return False
    except aiosasl.SASLFailure as e:
        emit(event='login', ok=False, error='SASLFailure', condition=getattr(e, 'opaque_error', None), text=e.text)
        return False
    except (aioxmpp.errors.MultiOSError, OSError, aioxmpp.errors.TLSFailure, OpenSSL.SSL.Error) as e:
        emit(event='connection_failed', error=f'{type(e).__name__}: {e}')
        return False
    except aioxmpp.errors.StreamNegotiationFailure as e:
        emit(event='login', ok=False, error=type(e).__name__, text=str(e))
        return False
    except Exception as e:  # noqa: BLE001 - e.g. aioopenssl's InvalidStateError after a failed verification
        emit(event='connection_failed', error=f'{type(e).__name__}: {e}')
        return False
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('host')
    p.add_argument('port', type=int)
    p.add_argument('jid')
    p.add_argument('password')
    p.add_argument('mechanism', nargs='?', default=None)
    p.add_argument('--ca', default=DEFAULT_CA)
    p.add_argument('--timeout', type=float, default=30)
    p.add_argument('--debug', action='store_true', help='aioxmpp debug log on stderr')
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.CRITICAL, stream=sys.stderr)
    try:
        ok = asyncio.run(asyncio.wait_for(run(args), args.timeout))
    except asyncio.TimeoutError:
        emit(event='timeout')
        ok = False
    emit(event='done', ok=bool(ok))
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
