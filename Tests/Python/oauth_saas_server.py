"""A SaaS stand-in for OAuth tests: an OAuth 2.1 authorization server built with authlib (Flask),
and an MCP server (official SDK, Streamable HTTP) that accepts only its access tokens.

Usage: oauth_saas_server.py AS_PORT MCP_PORT TOKEN_SECONDS
Prints the two base URLs, one a line. The authorization server:
- registers one confidential client, `warden-test` / `test-client-secret-0123456789`, any loopback
  redirect URI;
- `/authorize` signs in without asking (as the user named by `as`, default `operator`) and
  redirects with a code; PKCE (S256) is required;
- `/token`: authorization_code and refresh_token grants; access tokens live TOKEN_SECONDS; every
  refresh rotates the refresh token (the old one is refused after);
- `/admin/stats`: how many token requests of each grant it served, and how many it refused;
- `/admin/revoke`: revokes every refresh token (as a user removing the app would);
- `/admin/tokens`: the access tokens issued, newest last (for leak checks);
- `/admin/outage?on=1|0`: while on, `/token` answers 503 (a provider that is down).
The MCP server's tools: `whoami` ("saas user <user>", or an error for a missing, unknown or expired
token) and `bearer` (the bearer token it received, as a careless server would echo it).
"""
import sys
import threading
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, jsonify, request
from mcp.server.mcpserver import Context, MCPServer
from werkzeug.serving import make_server

CLIENT_ID = "warden-test"
CLIENT_SECRET = "test-client-secret-0123456789"
lock = threading.RLock()
codes = {}
tokens = {}  # access token -> Token
refresh_tokens = {}  # refresh token -> Token
issued = []
stats = {"authorization_code": 0, "refresh_token": 0, "refused": 0, "unavailable": 0}
outage = {"on": False}


class Client(ClientMixin):
    def get_client_id(self):
        return CLIENT_ID

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        return scope or ""

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri.startswith("http://127.0.0.1:") or redirect_uri.startswith("http://localhost:")

    def check_client_secret(self, client_secret):
        return client_secret == CLIENT_SECRET

    def check_endpoint_auth_method(self, method, endpoint):
        return method == "client_secret_basic"

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in ("authorization_code", "refresh_token")


class Code(AuthorizationCodeMixin):
    def __init__(self, code, redirect_uri, scope, user, challenge, method):
        self.code, self.redirect_uri, self.scope, self.user = code, redirect_uri, scope, user
        self.code_challenge, self.code_challenge_method = challenge, method

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


class Token(TokenMixin):
    def __init__(self, data, user):
        self.access_token = data["access_token"]
        self.refresh_token = data.get("refresh_token")
        self.scope = data.get("scope", "")
        self.expires_in = data["expires_in"]
        self.issued_at = time.time()
        self.user = user
        self.revoked = False

    def check_client(self, client):
        return client.get_client_id() == CLIENT_ID

    def get_scope(self):
        return self.scope

    def get_expires_in(self):
        return self.expires_in

    def is_expired(self):
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self):
        return self.revoked

    def get_user(self):
        return self.user

    def get_client(self):
        return Client()


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]

    def save_authorization_code(self, code, request):
        payload = request.payload
        codes[code] = Code(
            code, payload.redirect_uri, payload.scope, request.user, payload.data.get("code_challenge"),
            payload.data.get("code_challenge_method"))

    def query_authorization_code(self, code, client):
        return codes.get(code)

    def delete_authorization_code(self, authorization_code):
        codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code):
        return authorization_code.user


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        token = refresh_tokens.get(refresh_token)
        return token if token and not token.revoked else None

    def authenticate_user(self, refresh_token):
        return refresh_token.user

    def revoke_old_credential(self, refresh_token):
        refresh_token.revoked = True


def save_token(data, request):
    token = Token(data, request.user)
    with lock:
        tokens[token.access_token] = token
        if token.refresh_token:
            refresh_tokens[token.refresh_token] = token
        issued.append(token.access_token)


def create_app(token_seconds):
    app = Flask(__name__)
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {"authorization_code": token_seconds, "refresh_token": token_seconds}
    app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = True
    server = AuthorizationServer(app, query_client=lambda client_id: Client() if client_id == CLIENT_ID else None, save_token=save_token)
    server.register_grant(AuthorizationCodeGrant, [CodeChallenge(required=True)])
    server.register_grant(RefreshTokenGrant)

    @app.get("/authorize")
    def authorize():
        return server.create_authorization_response(grant_user=request.args.get("as", "operator"))

    @app.post("/token")
    def token():
        # One grant at a time, as a real provider's database would serialize them.
        with lock:
            if outage["on"]:
                stats["unavailable"] += 1
                return jsonify({"message": "down for maintenance"}), 503
            grant = request.form.get("grant_type", "")
            response = server.create_token_response()
            if response.status_code == 200:
                stats[grant] = stats.get(grant, 0) + 1
            else:
                stats["refused"] += 1
            return response

    @app.get("/admin/stats")
    def admin_stats():
        return jsonify(stats)

    @app.post("/admin/revoke")
    def admin_revoke():
        with lock:
            for token in refresh_tokens.values():
                token.revoked = True
        return jsonify({"revoked": len(refresh_tokens)})

    @app.post("/admin/outage")
    def admin_outage():
        outage["on"] = request.args.get("on") == "1"
        return jsonify(outage)

    @app.get("/admin/tokens")
    def admin_tokens():
        return jsonify(issued)

    return app


mcp = MCPServer("saas")


def bearer(ctx: Context) -> str:
    headers = dict(ctx.headers or {}) if hasattr(ctx, "headers") else {}
    value = next((value for name, value in headers.items() if name.lower() == "authorization"), "")
    return value[len("Bearer "):] if value.startswith("Bearer ") else ""


@mcp.tool()
def whoami(ctx: Context) -> str:
    token = tokens.get(bearer(ctx))
    if token is None:
        raise ValueError("no valid access token was presented")
    if token.is_expired():
        raise ValueError("the access token expired")
    return "saas user " + token.user


@mcp.tool(name="bearer")
def echo_bearer(ctx: Context) -> str:
    return "I was called with " + bearer(ctx)


if __name__ == "__main__":
    as_port, mcp_port, token_seconds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    http = make_server("127.0.0.1", as_port, create_app(token_seconds), threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{as_port}", flush=True)
    print(f"http://127.0.0.1:{mcp_port}/mcp", flush=True)
    mcp.run("streamable-http", host="127.0.0.1", port=mcp_port)
