"""An LwM2M 1.1 client written with aiocoap over its tinydtls transport (DTLS PSK,
TLS_PSK_WITH_AES_128_CCM_8): registers over coaps://, then serves reads of /3303/0/5700 through the same DTLS
session (the server's requests arrive on the connection the client opened), notifying observers of it every
0.3 s with a rising value, until killed.

Usage: python aiocoap_dtls_client.py SERVER_HOST:PORT ENDPOINT PSK_IDENTITY PSK_KEY
"""
import asyncio
import sys

import aiocoap.resource as resource
from aiocoap import Code, Context, Message


class Temperature(resource.ObservableResource):
    def __init__(self):
        super().__init__()
        self.value = 22.5
        self.observed = False

    async def render_get(self, request):
        return Message(payload=f"{self.value}".encode(), content_format=0)

    def update_observation_count(self, count):
        if count and not self.observed:
            self.observed = True
            asyncio.get_running_loop().call_later(0.3, self.tick)
        elif not count:
            self.observed = False

    def tick(self):
        if not self.observed:
            return
        self.value += 1.0
        self.updated_state()
        asyncio.get_running_loop().call_later(0.3, self.tick)


async def main():
    server, ep, identity, key = sys.argv[1:5]
    site = resource.Site()
    site.add_resource(["3303", "0", "5700"], Temperature())
    ctx = await Context.create_client_context()
    # Requests the server sends through the DTLS session go to this site.
    ctx.serversite = site
    ctx.client_credentials.load_from_dict(
        {f"coaps://{server}/*": {"dtls": {"psk": key.encode(), "client-identity": identity.encode()}}}
    )
    links = '</>;rt="oma.lwm2m";ct="0 112",</3303/0>'
    req = Message(code=Code.POST, uri=f"coaps://{server}/rd?ep={ep}&lt=60&lwm2m=1.1&b=U",
                  payload=links.encode(), content_format=40)
    resp = await ctx.request(req).response
    print("REGISTER", resp.code, "/" + "/".join(resp.opt.location_path), flush=True)
    await asyncio.sleep(60)


asyncio.run(main())
