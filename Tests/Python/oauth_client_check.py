"""The official Python SDK's OAuth client against Warden, end to end: discovery (RFC 9728, RFC 8414),
dynamic registration, sign-in and consent through the pages (a scripted user agent), the token, a
tool call, a refresh (the refresh token rotates), and revocation (RFC 7009). Prints a JSON report.

Usage: oauth_client_check.py GATEWAY_URL ORG EMAIL PASSWORD TOOL
"""
import json
import sys
import time

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from oauth_browser import Browser
from run_check import run_check


class MemoryStorage:
    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


async def main() -> None:
    base, org, email, password, tool = sys.argv[1:6]
    report = {}
    browser = Browser(base)
    storage = MemoryStorage()
    pending = {}

    async def redirect_handler(url: str) -> None:
        report.setdefault("authorization_urls", []).append(url)
        pending["answer"] = await browser.approve(url, org, email, password)

    async def callback_handler() -> AuthorizationCodeResult:
        answer = pending.pop("answer")
        report["redirect"] = {key: value for key, value in answer.items() if key != "code"}
        return AuthorizationCodeResult(code=answer["code"], state=answer.get("state"), iss=answer.get("iss"))

    provider = OAuthClientProvider(
        server_url=base + "/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="SDK flow check", redirect_uris=["http://127.0.0.1:33418/callback"], scope="mcp",
            grant_types=["authorization_code", "refresh_token"],
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30, read=120)) as http:
        async with Client(streamable_http_client(base + "/mcp", http_client=http)) as client:
            listed = await client.list_tools()
            report["tools"] = sorted(item.name for item in listed.tools)
            result = await client.call_tool(tool, {})
            report["call"] = {"ok": not result.is_error, "text": "\n".join(getattr(item, "text", "") for item in result.content)}
            report["client_id"] = storage.client_info.client_id
            first = storage.tokens
            report["scope"] = first.scope
            report["has_refresh_token"] = bool(first.refresh_token)
            # The access token "expires": the SDK refreshes before its next request.
            provider.context.token_expiry_time = time.time() - 1
            await client.list_tools()
            second = storage.tokens
            report["refreshed"] = second.access_token != first.access_token
            report["refresh_rotated"] = second.refresh_token != first.refresh_token
            report["authorizations"] = len(report["authorization_urls"])

    # RFC 7009: revoking the refresh token ends the grant (and the access tokens issued for it).
    async with httpx2.AsyncClient(timeout=30) as plain:
        revoked = await plain.post(base + "/oauth/revoke", data={"token": second.refresh_token, "client_id": report["client_id"]})
        report["revoke_status"] = revoked.status_code
        refresh = await plain.post(
            base + "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": second.refresh_token, "client_id": report["client_id"]},
        )
        report["refresh_after_revoke"] = {"status": refresh.status_code, "body": refresh.json()}
        probe = await plain.post(
            base + "/mcp",
            headers={"Authorization": "Bearer " + second.access_token, "Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "sdk-check", "version": "1"}}},
        )
        report["access_after_revoke"] = probe.status_code
    await browser.close()
    print(json.dumps(report))


run_check(main)
