"""aioxmpp pieces both aioxmpp scripts use: a security layer that trusts the test CA, optionally
limited to one SASL mechanism."""
import aioxmpp
import aioxmpp.security_layer


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
