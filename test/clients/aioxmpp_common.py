"""aioxmpp pieces the aioxmpp scripts use: a security layer that trusts the test CA, optionally
limited to one SASL mechanism; the base of the scenario scripts' parties."""
import asyncio
import contextlib

import aioxmpp
import aioxmpp.connector
import aioxmpp.security_layer

from common import EventLog, StepTimeout


class ForcedMechanismProvider(aioxmpp.security_layer.PasswordSASLProvider):
    """PasswordSASLProvider that only considers one mechanism name from the server's list."""

    def __init__(self, *args, mechanism=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._only = mechanism

    def _find_supported(self, features, mechanism_classes):
        if self._only is None:
            return super()._find_supported(features, mechanism_classes)
        mechs = features[aioxmpp.security_layer.SASLMechanisms].get_mechanism_list()
        if self._only not in mechs:
            return None, None
        for cls in mechanism_classes:
            token = cls.any_supported([self._only])
            if token is not None:
                return cls, token
        return None, None


def make_security_layer(password, ca, mechanism=None):
    def ssl_context_factory():
        ctx = aioxmpp.security_layer.default_ssl_context()
        ctx.load_verify_locations(ca)
        return ctx

    async def password_provider(_jid, _attempt):
        return password

    return aioxmpp.security_layer.SecurityLayer(
        ssl_context_factory,
        aioxmpp.security_layer.PKIXCertificateVerifier,
        True,  # TLS required
        (ForcedMechanismProvider(password_provider, mechanism=mechanism, max_auth_attempts=1),),
    )


class PartyBase(EventLog):
    """One aioxmpp.Client of a scenario (STARTTLS required, the test CA), recording events. A subclass
    summons its services and records an 'available' event for its own full JID: start() waits for it
    (the proxy reflects the resource's own presence)."""

    def __init__(self, role, full_jid, args):
        self.role = role
        self.args = args
        self.events = []
        self.waiters = []
        self.client = aioxmpp.Client(
            aioxmpp.JID.fromstr(full_jid),
            make_security_layer(args.password, args.ca),
            override_peer=[(args.host, args.port, aioxmpp.connector.STARTTLSConnector())],
        )
        self.stack = contextlib.AsyncExitStack()

    @property
    def full(self):
        return str(self.client.local_jid)

    async def start(self):
        try:
            await asyncio.wait_for(self.stack.enter_async_context(self.client.connected()), self.args.step_timeout * 2)
        except asyncio.TimeoutError:
            raise StepTimeout(self.role, 'login') from None
        self.note('login', ok=True, jid=self.full)
        # the proxy reflects the resource's own presence: online for sure
        await self.wait_event('available', 'own presence reflected', **{'from': self.full})

    async def stop(self):
        await self.stack.aclose()
