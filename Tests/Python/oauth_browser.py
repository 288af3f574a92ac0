"""A scripted user agent for Warden's OAuth pages: it reads the forms' hidden fields, signs in,
and answers the consent page, as a person in a browser would (cookies kept, redirects not followed
so that each step can be checked)."""
import html
import re
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def hidden_fields(page: str) -> dict:
    return {html.unescape(name): html.unescape(value) for name, value in HIDDEN.findall(page)}


class Browser:
    def __init__(self, base: str):
        self.base = base
        self.http = httpx2.AsyncClient(follow_redirects=False, timeout=30)

    async def close(self):
        await self.http.aclose()

    async def get(self, url: str):
        return await self.http.get(urljoin(self.base, url))

    async def post(self, path: str, fields: dict):
        return await self.http.post(urljoin(self.base, path), data=fields)

    async def sign_in(self, page: str, org: str, email: str, password: str):
        """Posts the sign-in form of PAGE; the response (a 303 on success)."""
        fields = hidden_fields(page)
        if 'name="org"' in page and 'type="text" id="org"' in page:
            fields["org"] = org
        fields.update(email=email, password=password)
        return await self.post("/oauth/sign-in", fields)

    async def approve(self, url: str, org: str, email: str, password: str, decision: str = "approve"):
        """Opens the authorization URL, signs in if asked, answers the consent page if shown;
        returns the final redirect's query parameters (code, state, iss or error)."""
        response = await self.get(url)
        if response.status_code == 200 and "/oauth/sign-in" in response.text:
            response = await self.sign_in(response.text, org, email, password)
            assert response.status_code == 303, f"sign-in answered {response.status_code}: {response.text[:500]}"
            response = await self.get(response.headers["location"])
        if response.status_code == 200 and "/oauth/consent" in response.text:
            fields = hidden_fields(response.text)
            fields["decision"] = decision
            response = await self.post("/oauth/consent", fields)
        assert response.status_code == 303, f"expected a redirect, got {response.status_code}: {response.text[:500]}"
        location = response.headers["location"]
        return {key: values[0] for key, values in parse_qs(urlparse(location).query).items()} | {"_location": location}
