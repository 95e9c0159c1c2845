"""An LwM2M 1.1 device written with aiocoap, for the interworking test: registers (SenML CBOR), Sends its
temperature as SenML CBOR on /dp, then asks the oneM2M side something (scenario 2) by Sending its request
object /32769/0 (topic, body), and prints every Write it receives on /32769/0 as
`ANSWER <content format> <payload hex>`.

Usage: python aiocoap_device.py SERVER_HOST:PORT LOCAL_PORT ENDPOINT [BODY]
BODY is the request's body (/32769/0/2), by default {"ask": "setpoint"}; a "target" in it names the application.
"""
import asyncio
import os
import sys

import aiocoap
import aiocoap.resource as resource
from aiocoap import Code, Context, Message

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../../test-support/scripts"))
from mini_cbor import cbor  # noqa: E402


class RequestObject(resource.Resource):
    async def render_post(self, request):
        cf = request.opt.content_format
        print("ANSWER", -1 if cf is None else int(cf), request.payload.hex(), flush=True)
        return Message(code=Code.CHANGED)

    async def render_put(self, request):
        return await self.render_post(request)


async def main():
    server, port, ep = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    body = sys.argv[4] if len(sys.argv) > 4 else '{"ask": "setpoint"}'
    site = resource.Site()
    site.add_resource(["32769", "0"], RequestObject())
    ctx = await Context.create_server_context(site, bind=("::", port))
    links = '</>;rt="oma.lwm2m";ct="0 112",</3303/0>,</32769/0>'
    req = Message(code=Code.POST, uri=f"coap://{server}/rd?ep={ep}&lt=120&lwm2m=1.1&b=U",
                  payload=links.encode(), content_format=40)
    resp = await ctx.request(req).response
    print("REGISTER", resp.code, flush=True)
    # Wait until asked to go on (the gateway must have made the device's tree first).
    await asyncio.get_event_loop().run_in_executor(None, sys.stdin.readline)
    data = cbor([{-2: "/3303/0/", 0: "5700", 2: 22.25}])
    resp = await ctx.request(Message(code=Code.POST, uri=f"coap://{server}/dp", payload=data,
                                     content_format=112)).response
    print("SEND", resp.code, flush=True)
    await asyncio.get_event_loop().run_in_executor(None, sys.stdin.readline)
    ask = cbor([{-2: "/32769/0/", 0: "0", 3: "config"}, {0: "2", 3: body}])
    resp = await ctx.request(Message(code=Code.POST, uri=f"coap://{server}/dp", payload=ask,
                                     content_format=112)).response
    print("ASK", resp.code, flush=True)
    await asyncio.sleep(120)


asyncio.run(main())
