"""Warden's authorization server refusing what it must, each case with the OAuth error the RFCs name,
and its discovery documents carrying their required fields. Prints a JSON report (one entry per case).

Usage: oauth_negative_check.py GATEWAY_URL ORG EMAIL PASSWORD LOCKED_EMAIL REGISTERED_CLIENT METADATA_PORT
       oauth_negative_check.py GATEWAY_URL ORG EMAIL PASSWORD --dynamic-refused|--password-refused
"""
import base64
import hashlib
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import httpx2

from oauth_browser import Browser, hidden_fields
from run_check import run_check

REDIRECT = "http://127.0.0.1:4567/cb"


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def serve_metadata(port: int):
    origin = f"http://localhost:{port}"
    documents = {
        "/client.json": json.dumps({"client_id": origin + "/client.json", "client_name": "Metadata Client", "redirect_uris": [REDIRECT]}),
        "/big.json": json.dumps({"client_id": origin + "/big.json", "redirect_uris": [REDIRECT], "padding": "x" * (70 << 10)}),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = documents.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            # The big document does not announce its size: the gateway must stop reading at 64 KiB.
            if self.path != "/big.json":
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return origin


async def main() -> None:
    base = sys.argv[1]
    org, email, password = sys.argv[2:5]
    report = {}
    http = httpx2.AsyncClient(follow_redirects=False, timeout=30)
    resource = base + "/mcp"

    async def register(uris=None, **extra):
        body = {"client_name": "Negative check", "redirect_uris": uris if uris is not None else [REDIRECT]} | extra
        return await http.post(base + "/oauth/register", json=body)

    def authorize_url(client_id, challenge, **overrides):
        params = {
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "state": "st-42", "code_challenge": challenge,
            "code_challenge_method": "S256", "scope": "mcp", "resource": resource,
        }
        params.update(overrides)
        return base + "/oauth/authorize?" + urlencode({key: value for key, value in params.items() if value is not None})

    def error_of(response):
        if response.status_code != 303:
            return {"status": response.status_code}
        query = parse_qs(urlparse(response.headers["location"]).query)
        return {"status": 303, "error": query.get("error", [None])[0], "state": query.get("state", [None])[0], "iss": query.get("iss", [None])[0]}

    async def token(**fields):
        response = await http.post(base + "/oauth/token", data=fields)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        return {"status": response.status_code, "error": body.get("error"), "body": body}

    async def mcp_status(access_token):
        response = await http.post(
            base + "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "negative-check", "version": "1"}}},
            headers={"Authorization": "Bearer " + access_token, "Accept": "application/json, text/event-stream"},
        )
        return response.status_code

    client_id = (await register()).json()["client_id"]
    browser = Browser(base)

    if sys.argv[5] == "--password-refused":
        verifier, challenge = pkce()
        page = await browser.get(authorize_url(client_id, challenge))
        fields = hidden_fields(page.text) | {"org": org, "email": email, "password": password}
        response = await browser.post("/oauth/sign-in", fields)
        report["password_refused"] = {"status": response.status_code, "says": "signs in at its identity provider" in response.text}
        print(json.dumps(report))
        return

    if sys.argv[5] == "--dynamic-refused":
        verifier, challenge = pkce()
        response = await browser.get(authorize_url(client_id, challenge))
        if "/oauth/sign-in" in response.text:
            response = await browser.sign_in(response.text, org, email, password)
            response = await browser.get(response.headers["location"])
        report["dynamic_refused"] = {"status": response.status_code, "says": "accepts only clients its admins registered" in response.text}
        print(json.dumps(report))
        return

    locked_email, registered, metadata_port = sys.argv[5], sys.argv[6], int(sys.argv[7])
    metadata_origin = serve_metadata(metadata_port)

    # Discovery documents and their required fields.
    documents = {}
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/.well-known/oauth-protected-resource",
                 "/.well-known/oauth-protected-resource/mcp"]:
        response = await http.get(base + path)
        documents[path] = response.json() if response.status_code == 200 else {"status": response.status_code}
    report["documents"] = documents

    # Registration (RFC 7591) refusals.
    report["register_without_redirect"] = (await register(uris=[])).json().get("error")
    report["register_javascript_redirect"] = (await register(uris=["javascript:alert(1)"])).json().get("error")
    report["register_remote_http_redirect"] = (await register(uris=["http://example.com/cb"])).json().get("error")
    secret_method = await register(token_endpoint_auth_method="client_secret_post")
    report["register_secret_method"] = {"status": secret_method.status_code, "method": secret_method.json().get("token_endpoint_auth_method")}

    verifier, challenge = pkce()
    # Errors shown on a page, never sent to an unregistered or mismatched redirect.
    unregistered = await http.get(authorize_url(client_id, challenge, redirect_uri="https://evil.example/cb"))
    report["unregistered_redirect"] = {"status": unregistered.status_code, "location": unregistered.headers.get("location")}
    mismatched = await http.get(authorize_url(registered, challenge, redirect_uri="https://app.example/other"))
    report["mismatched_redirect"] = {"status": mismatched.status_code, "location": mismatched.headers.get("location")}
    unknown = await http.get(authorize_url("wdc_nobody", challenge))
    report["unknown_client"] = {"status": unknown.status_code}
    # Errors a client its org's admins registered hears at its redirect URI.
    app = "https://app.example/cb"
    report["missing_pkce"] = error_of(await http.get(authorize_url(registered, None, redirect_uri=app)))
    report["plain_pkce"] = error_of(await http.get(authorize_url(registered, verifier[:43], code_challenge_method="plain", redirect_uri=app)))
    report["foreign_resource"] = error_of(await http.get(authorize_url(registered, challenge, resource="https://other.example/mcp", redirect_uri=app)))
    report["token_response_type"] = error_of(await http.get(authorize_url(registered, challenge, response_type="token", redirect_uri=app)))
    report["unknown_scope"] = error_of(await http.get(authorize_url(registered, challenge, scope="mcp admin", redirect_uri=app)))
    report["prompt_none_signed_out"] = error_of(await http.get(authorize_url(registered, challenge, prompt="none", redirect_uri=app)))
    # A client anyone registered gets a page instead: the gateway is no open redirector.
    page = await http.get(authorize_url(client_id, None))
    report["dynamic_error_page"] = {
        "status": page.status_code, "location": page.headers.get("location"), "names_error": "invalid_request" in page.text,
        "links_back": 'id="return"' in page.text,
    }
    report["loopback_any_port"] = (await http.get(authorize_url(client_id, challenge, redirect_uri="http://127.0.0.1:9/cb"))).status_code

    # A first consent: sign in and allow; the consent page cannot be framed.
    page = await browser.get(authorize_url(client_id, challenge))
    signed = await browser.sign_in(page.text, org, email, password)
    consent = await browser.get(signed.headers["location"])
    report["consent_headers"] = {
        "csp": consent.headers.get("content-security-policy"), "x_frame_options": consent.headers.get("x-frame-options"),
        "cache_control": consent.headers.get("cache-control"), "cookie": signed.headers.get("set-cookie", "").split(";")[0].split("=")[0],
        "cookie_attributes": signed.headers.get("set-cookie", ""),
    }
    fields = hidden_fields(consent.text)
    without_csrf = {key: value for key, value in fields.items() if key != "csrf"} | {"decision": "approve"}
    report["consent_without_csrf"] = (await browser.post("/oauth/consent", without_csrf)).status_code
    wrong_csrf = fields | {"csrf": "forged", "decision": "approve"}
    report["consent_wrong_csrf"] = (await browser.post("/oauth/consent", wrong_csrf)).status_code
    approved = await browser.post("/oauth/consent", fields | {"decision": "approve"})
    answer = parse_qs(urlparse(approved.headers["location"]).query)
    report["approved"] = {"status": approved.status_code, "state": answer.get("state", [None])[0], "iss": answer.get("iss", [None])[0]}
    code = answer["code"][0]

    # A wrong verifier spends the code.
    report["wrong_verifier"] = await token(grant_type="authorization_code", code=code, code_verifier=pkce()[0], redirect_uri=REDIRECT, client_id=client_id)
    report["right_after_wrong"] = await token(grant_type="authorization_code", code=code, code_verifier=verifier, redirect_uri=REDIRECT, client_id=client_id)

    # The consent is remembered: the next authorization answers at once.
    verifier, challenge = pkce()
    again = await browser.get(authorize_url(client_id, challenge))
    report["remembered"] = again.status_code
    code = parse_qs(urlparse(again.headers["location"]).query)["code"][0]
    first = await token(grant_type="authorization_code", code=code, code_verifier=verifier, redirect_uri=REDIRECT, client_id=client_id, resource=resource)
    report["exchange"] = {"status": first["status"], "has_refresh": bool(first["body"].get("refresh_token")), "token_type": first["body"].get("token_type")}
    report["access_works"] = await mcp_status(first["body"]["access_token"])
    report["reused_code"] = await token(grant_type="authorization_code", code=code, code_verifier=verifier, redirect_uri=REDIRECT, client_id=client_id)
    report["access_after_reused_code"] = await mcp_status(first["body"]["access_token"])
    report["refresh_after_reused_code"] = (await token(grant_type="refresh_token", refresh_token=first["body"]["refresh_token"], client_id=client_id))["error"]

    # Refresh tokens rotate; a used one presented again revokes the family.
    time.sleep(1.1)  # revocations apply to tokens issued up to their second
    verifier, challenge = pkce()
    code = parse_qs(urlparse((await browser.get(authorize_url(client_id, challenge))).headers["location"]).query)["code"][0]
    issued = await token(grant_type="authorization_code", code=code, code_verifier=verifier, redirect_uri=REDIRECT, client_id=client_id)
    rotated = await token(grant_type="refresh_token", refresh_token=issued["body"]["refresh_token"], client_id=client_id)
    report["refresh"] = {"status": rotated["status"], "rotated": rotated["body"].get("refresh_token") != issued["body"]["refresh_token"]}
    report["refresh_foreign_resource"] = (await token(
        grant_type="refresh_token", refresh_token=rotated["body"]["refresh_token"], client_id=client_id, resource="https://other.example/mcp"))["error"]
    report["reused_refresh"] = await token(grant_type="refresh_token", refresh_token=issued["body"]["refresh_token"], client_id=client_id)
    report["rotated_after_reuse"] = (await token(grant_type="refresh_token", refresh_token=rotated["body"]["refresh_token"], client_id=client_id))["error"]
    report["access_after_reuse"] = await mcp_status(rotated["body"]["access_token"])

    # The token request repeats what the authorization request named, for the same client.
    for name, fields in [
        ("exchange_without_redirect", {}), ("exchange_other_redirect", {"redirect_uri": "http://127.0.0.1:4567/other"}),
        ("exchange_other_client", {"redirect_uri": REDIRECT, "client_id": "wdc_someone_else"}),
        ("exchange_foreign_resource", {"redirect_uri": REDIRECT, "resource": "https://other.example/mcp"}),
    ]:
        verifier, challenge = pkce()
        code = parse_qs(urlparse((await browser.get(authorize_url(client_id, challenge))).headers["location"]).query)["code"][0]
        report[name] = (await token(**({"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "client_id": client_id} | fields)))["error"]

    # prompt=login asks for the password again, once; prompt=none with a remembered consent answers at once.
    verifier, challenge = pkce()
    again = await browser.get(authorize_url(client_id, challenge, prompt="login"))
    relogin = await browser.sign_in(again.text, org, email, password)
    after = await browser.get(relogin.headers["location"])
    report["prompt_login"] = {
        "asked": "/oauth/sign-in" in again.text, "next_has_prompt": "prompt" in relogin.headers.get("location", ""), "then": after.status_code,
    }
    verifier, challenge = pkce()
    report["prompt_none_remembered"] = error_of(await browser.get(authorize_url(client_id, challenge, prompt="none")))

    # Introspection (RFC 7662): a client learns about its own tokens only.
    time.sleep(1.1)
    verifier, challenge = pkce()
    code = parse_qs(urlparse((await browser.get(authorize_url(client_id, challenge))).headers["location"]).query)["code"][0]
    fresh = (await token(grant_type="authorization_code", code=code, code_verifier=verifier, redirect_uri=REDIRECT, client_id=client_id))["body"]
    own = (await http.post(base + "/oauth/introspect", data={"token": fresh["access_token"], "client_id": client_id})).json()
    other = (await http.post(base + "/oauth/introspect", data={"token": fresh["access_token"], "client_id": "wdc_other"})).json()
    refresh_state = (await http.post(base + "/oauth/introspect", data={"token": fresh["refresh_token"], "client_id": client_id})).json()
    report["introspect"] = {"own": own.get("active"), "aud": own.get("aud"), "other": other.get("active"), "refresh": refresh_state.get("active")}

    # Metadata documents: fetched and used; refused at loopback, link-local and when oversized.
    for name, document_url in [
        ("cimd_ok", metadata_origin + "/client.json"), ("cimd_oversized", metadata_origin + "/big.json"),
        ("cimd_loopback", "https://127.0.0.1/client.json"), ("cimd_link_local", "https://169.254.169.254/latest/client.json"),
    ]:
        response = await browser.get(authorize_url(document_url, challenge))
        report[name] = {
            "status": response.status_code, "metadata_client": "Metadata Client" in response.text,
            "private": "loopback, private, link-local or reserved address" in response.text, "oversized": "larger than 64 KiB" in response.text,
        }

    # The consents page lists the client and withdraws it.
    listing = await browser.get("/oauth/consents")
    report["consents_page"] = {"status": listing.status_code, "lists": "Negative check" in listing.text}
    withdraw_fields = hidden_fields(listing.text)
    withdrawn = await browser.post("/oauth/consents", {"csrf": withdraw_fields["csrf"], "client_id": withdraw_fields["client_id"]})
    report["withdrawn"] = {"status": withdrawn.status_code, "lists": "Negative check" in withdrawn.text, "notice": "Withdrawn" in withdrawn.text}
    report["access_after_withdrawal"] = await mcp_status(fresh["access_token"])
    report["refresh_after_withdrawal"] = (await token(grant_type="refresh_token", refresh_token=fresh["refresh_token"], client_id=client_id))["error"]

    # Guessing a password: five failures lock the account, even for the right password.
    guesser = Browser(base)
    statuses = []
    for attempt in range(6):
        page = await guesser.get(authorize_url(client_id, challenge))
        response = await guesser.sign_in(page.text, org, locked_email, password if attempt == 5 else f"wrong-guess-{attempt}")
        statuses.append(response.status_code)
    report["guessing"] = {"statuses": statuses, "says": "too many failed sign-ins" in response.text.lower()}
    await guesser.close()
    await browser.close()
    await http.aclose()
    print(json.dumps(report))


run_check(main)
