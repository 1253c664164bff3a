#!/usr/bin/python3
"""Avatars and other PEP data with aioxmpp's services (Debian python3-aioxmpp 0.13), for the proxy
tests (test/python-pep.test.ts).

Usage: aioxmpp_pep.py SCENARIO HOST PORT --jid ROLE=JID [--jid ROLE=JID ...] --password PASSWORD
                      [--ca FILE] [--timeout SECONDS] [--step-timeout SECONDS] [--debug]

Each party is an aioxmpp.Client with PresenceServer (available), EntityCapsService (caps on its
presence), PEPClient, AvatarService (XEP-0084; its metadata node registered with notify=True) and a
small service of this script that registers the XEP-0172 nick node with notify=True through
aioxmpp.pep.register_pep_node; their +notify features reach the caps.

Scenarios (ROLEs in brackets; A and B already share presence both ways, C is a stranger to A):
  avatar   [A, B, C]   B and C online; A publishes an avatar set (AvatarService.publish_avatar_set:
                       data, then metadata, no publish-options) and a nick (PEPClient.publish with
                       access_model='presence'); B gets on_metadata_changed and the nick node's
                       on_item_publish, and fetches the image bytes through the metadata descriptor;
                       C asks PubSubClient for the data item by id and gets an error

Output: JSON lines, as aioxmpp_chat.py, plus
  {"event": "avatar_metadata", "client": "B", "from": ..., "ids": [...], "bytes": [...]}
  {"event": "avatar_data", "client": "B", "from": ..., "ok": true, "data": base64} or ok false + condition
  {"event": "nick", "client": "B", "from": ..., "nick": ...}
"""
import asyncio
import base64
import hashlib

import aioxmpp
import aioxmpp.avatar
import aioxmpp.entitycaps
import aioxmpp.errors
import aioxmpp.pep
import aioxmpp.pubsub
import aioxmpp.pubsub.xso
import aioxmpp.service
import aioxmpp.xso

from aioxmpp_common import PartyBase
from common import run_scenarios

NS_NICK = 'http://jabber.org/protocol/nick'
NS_AVATAR_DATA = 'urn:xmpp:avatar:data'
AVATAR = b'\x89PNG\r\n\x1a\nxep207-proxy aioxmpp avatar'
RESOURCES = {'A': 'balcony', 'B': 'orchard', 'C': 'street'}


@aioxmpp.pubsub.xso.as_payload_class
class Nick(aioxmpp.xso.XSO):
    TAG = (NS_NICK, 'nick')
    text = aioxmpp.xso.Text(default='')

    def __init__(self, text=''):
        super().__init__()
        self.text = text


class NickService(aioxmpp.service.Service):
    """XEP-0172 as an aioxmpp application would add it: a PEP node claimed with +notify."""
    ORDER_AFTER = [aioxmpp.pep.PEPClient]
    __module__ = 'xep207_test.nick'  # aioxmpp derives the service's logger name from a dotted module
    nick_pep = aioxmpp.pep.register_pep_node(NS_NICK, notify=True)


def condition_of(e):
    return e.condition.value[1] if hasattr(e.condition, 'value') else str(e.condition)


class Party(PartyBase):
    def __init__(self, role, jid, args):
        super().__init__(role, f'{jid}/{RESOURCES[role]}', args)
        self.presence = self.client.summon(aioxmpp.PresenceClient)
        self.server = self.client.summon(aioxmpp.PresenceServer)
        self.client.summon(aioxmpp.EntityCapsService)
        self.pep = self.client.summon(aioxmpp.PEPClient)
        self.pubsub = self.client.summon(aioxmpp.PubSubClient)
        self.avatar = self.client.summon(aioxmpp.avatar.AvatarService)
        self.nick = self.client.summon(NickService)
        self.server.set_presence(aioxmpp.PresenceState(True))
        self.descriptors = {}
        self.presence.on_available.connect(lambda full, st: self.note('available', **{'from': str(full)}))
        self.avatar.on_metadata_changed.connect(self.on_metadata)
        self.nick.nick_pep.on_item_publish.connect(self.on_nick)

    def on_metadata(self, jid, metadata):
        self.descriptors[str(jid)] = list(metadata)
        self.note('avatar_metadata', **{'from': str(jid)}, ids=[d.normalized_id for d in metadata], bytes=[d.nbytes for d in metadata])

    def on_nick(self, jid, node, item, message=None):
        payload = item.registered_payload
        self.note('nick', **{'from': str(jid)}, nick=payload.text if payload is not None else None)

    async def fetch_avatar(self, jid):
        try:
            png = [d for d in self.descriptors[jid] if d.mime_type == 'image/png'][0]
            data = await asyncio.wait_for(png.get_image_bytes(), self.args.step_timeout)
            self.note('avatar_data', **{'from': jid}, ok=True, data=base64.b64encode(data).decode())
        except aioxmpp.errors.XMPPError as e:
            self.note('avatar_data', **{'from': jid}, ok=False, condition=condition_of(e))

    async def fetch_by_id(self, jid, item_id):
        try:
            res = await asyncio.wait_for(self.pubsub.get_items_by_id(aioxmpp.JID.fromstr(jid), NS_AVATAR_DATA, [item_id]), self.args.step_timeout)
            self.note('avatar_data', **{'from': jid}, ok=True, data=None, items=len(res.payload.items))
        except aioxmpp.errors.XMPPError as e:
            self.note('avatar_data', **{'from': jid}, ok=False, condition=condition_of(e))


async def avatar(clients, jids):
    a, b, c = clients['A'], clients['B'], clients['C']
    for x in (a, b, c):
        await x.start()
    await asyncio.sleep(2)  # the proxies ask each client's caps (disco#info of its caps node)
    avatar_set = aioxmpp.avatar.AvatarSet()
    avatar_set.add_avatar_image('image/png', image_bytes=AVATAR)
    await asyncio.wait_for(a.avatar.publish_avatar_set(avatar_set), a.args.step_timeout)
    await asyncio.wait_for(a.pep.publish(NS_NICK, Nick('Jules'), id_='current', access_model='presence'), a.args.step_timeout)
    # (an earlier avatar may arrive first, as the last item at login)
    png_id = hashlib.sha1(AVATAR).hexdigest()
    await b.until(lambda: any(png_id in e['ids'] for e in b.events if e['event'] == 'avatar_metadata' and e['from'] == jids['A']), "A's avatar metadata")
    await b.wait_event('nick', "A's nick", nick='Jules', **{'from': jids['A']})
    await b.fetch_avatar(jids['A'])
    await c.fetch_by_id(jids['A'], png_id)
    await asyncio.sleep(1)


SCENARIOS = {'avatar': (avatar, {})}


if __name__ == '__main__':
    run_scenarios(__doc__.split('\n')[0], SCENARIOS, 'aioxmpp', lambda role, jid, args, _options: Party(role, jid, args))
