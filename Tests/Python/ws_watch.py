"""Follows the approvers' WebSocket channel (websockets from PyPI): connects to URL with the approver
token as a bearer header, prints "connected" and the upgrade answer's X-Request-Id, then each message as it arrives (one JSON line), and
stops after COUNT messages; when the gateway closes the socket, prints {"closed": CODE, "reason": …}.

Usage: ws_watch.py URL TOKEN COUNT
"""
import asyncio
import json
import sys

import websockets


async def main() -> None:
    url, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    async with websockets.connect(url, additional_headers={"Authorization": "Bearer " + token}) as socket:
        print("connected", socket.response.headers.get("X-Request-Id", "(no request id)"), flush=True)
        try:
            for _ in range(count):
                print(await socket.recv(), flush=True)
        except websockets.ConnectionClosed as closed:
            print(json.dumps({"closed": closed.rcvd.code if closed.rcvd else None, "reason": closed.rcvd.reason if closed.rcvd else None}), flush=True)


asyncio.run(main())
