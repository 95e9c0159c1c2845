"""An LwM2M 1.1 client written with aiocoap: registers, sends SenML CBOR with the Send operation (large enough
to go block-wise), then serves reads of /3303/0/5700 from the same socket until killed.

Usage: python aiocoap_client.py SERVER_HOST:PORT LOCAL_PORT
"""
import asyncio
import os
import sys

import aiocoap
import aiocoap.resource as resource
from aiocoap import Code, Context, Message

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../../test-support/scripts"))
from mini_cbor import cbor  # noqa: E402


class Temperature(resource.Resource):
    async def render_get(self, request):
        return Message(payload=b"22.5", content_format=0)


async def main():
    server, port = sys.argv[1], int(sys.argv[2])
    site = resource.Site()
    site.add_resource(["3303", "0", "5700"], Temperature())
    ctx = await Context.create_server_context(site, bind=("::", port))
    links = '</>;rt="oma.lwm2m";ct="0 112",</3303/0>'
    req = Message(code=Code.POST, uri=f"coap://{server}/rd?ep=aio-ep&lt=60&lwm2m=1.1&b=U",
                  payload=links.encode(), content_format=40)
    resp = await ctx.request(req).response
    print("REGISTER", resp.code, "/" + "/".join(resp.opt.location_path), flush=True)
    records = [{-2: "/3303/", 0: f"{i}/5700", 2: 20.0 + i / 2} for i in range(80)]
    payload = cbor(records)
    print("SENDSIZE", len(payload), flush=True)
    resp = await ctx.request(Message(code=Code.POST, uri=f"coap://{server}/dp", payload=payload,
                                     content_format=112)).response
    print("SEND", resp.code, flush=True)
    await asyncio.sleep(60)


asyncio.run(main())
