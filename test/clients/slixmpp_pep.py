#!/usr/bin/python3
"""PEP with slixmpp's own plugins (Debian python3-slixmpp 1.8: xep_0084 avatars, xep_0172 nicknames,
on xep_0163/xep_0115), for the proxy tests (test/python-pep.test.ts).

Usage: slixmpp_pep.py SCENARIO HOST PORT --jid ROLE=JID [--jid ROLE=JID ...] --password PASSWORD
                      [--ca FILE] [--timeout SECONDS] [--step-timeout SECONDS] [--debug]

The clients are slixmpp_roster.Client (get_roster, then presence) with xep_0084 and xep_0172, which
register their +notify interests with xep_0163; xep_0115 puts the caps on every presence.

Scenarios (ROLEs in brackets; A and B already share presence both ways, C is a stranger to A):
  avatar   [A, B, C]   B and C online; A publishes an avatar (publish_avatar, then
                       publish_avatar_metadata) and a nickname (publish_nick), with slixmpp's defaults
                       (no publish-options); B gets the avatar_metadata_publish and user_nick_publish
                       events and retrieves the avatar data by the id in the metadata; C retrieves it
                       too and gets an error; C must not have been notified
  login    [B]         B logs in again: the last metadata and nick arrive as events

Output: JSON lines, as slixmpp_roster.py, plus
  {"event": "avatar_metadata", "client": "B", "from": ..., "id": ..., "bytes": ...}
  {"event": "nick", "client": "B", "from": ..., "nick": ...}
  {"event": "avatar_data", "client": "B", "from": ..., "ok": true, "data": base64} or ok false + condition
"""
import asyncio
import base64

from slixmpp.exceptions import IqError, IqTimeout

from common import run_scenarios
from slixmpp_roster import Client as RosterClient

AVATAR = b'\x89PNG\r\n\x1a\nxep207-proxy test avatar'


class Client(RosterClient):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        for p in ('xep_0030', 'xep_0115', 'xep_0163', 'xep_0084', 'xep_0172'):
            self.register_plugin(p)
        self.add_event_handler('avatar_metadata_publish', self.on_metadata)
        self.add_event_handler('user_nick_publish', self.on_nick)

    def on_metadata(self, msg):
        item = msg['pubsub_event']['items']['item']
        infos = item['avatar_metadata']['items']
        info = infos[0] if infos else {}
        self.note('avatar_metadata', **{'from': str(msg['from'])}, id=item['id'], bytes=str(info.get('bytes', '')))

    def on_nick(self, msg):
        nick = msg['pubsub_event']['items']['item']['nick']['nick']
        self.note('nick', **{'from': str(msg['from'])}, nick=nick)

    async def retrieve(self, jid, item_id):
        try:
            res = await self['xep_0084'].retrieve_avatar(jid, item_id, timeout=self.args.step_timeout)
            data = res['pubsub']['items']['item']['avatar_data']['value']
            self.note('avatar_data', **{'from': jid}, ok=True, data=base64.b64encode(data).decode())
        except IqError as e:
            self.note('avatar_data', **{'from': jid}, ok=False, condition=e.iq['error']['condition'])
        except IqTimeout:
            self.note('avatar_data', **{'from': jid}, ok=False, condition='timeout')


async def avatar(clients, jids):
    a, b, c = clients['A'], clients['B'], clients['C']
    for x in (a, b, c):
        await x.start()
    await asyncio.sleep(2)  # the proxies ask each client's caps (disco#info of its caps node)
    item_id = a['xep_0084'].generate_id(AVATAR)
    await a['xep_0084'].publish_avatar(AVATAR, timeout=a.args.step_timeout)
    await a['xep_0084'].publish_avatar_metadata([{'id': item_id, 'type': 'image/png', 'bytes': len(AVATAR)}], timeout=a.args.step_timeout)
    await a['xep_0172'].publish_nick('Jules', timeout=a.args.step_timeout)
    # (an earlier avatar may arrive first, as the last item at login)
    meta = await b.wait_event('avatar_metadata', "A's avatar metadata", id=item_id, **{'from': jids['A']})
    await b.wait_event('nick', "A's nick", nick='Jules', **{'from': jids['A']})
    await b.retrieve(jids['A'], meta['id'])
    await c.retrieve(jids['A'], item_id)
    await asyncio.sleep(1)


async def login(clients, jids):
    b = clients['B']
    await b.start()
    await b.wait_event('avatar_metadata', "A's last avatar metadata", **{'from': jids['A']})
    await b.wait_event('nick', "A's last nick", **{'from': jids['A']})


SCENARIOS = {
    'avatar': (avatar, {}),
    'login': (login, {}),
}


if __name__ == '__main__':
    run_scenarios(__doc__.split('\n')[0], SCENARIOS, 'slixmpp',
                  lambda role, jid, args, options: Client(role, jid, args.password, args, **options))
