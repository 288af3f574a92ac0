"""Walks Warden's OAuth pages in headless Chromium (Debian's chromium and chromedriver, selenium) at a
phone's size, saving a screenshot of each page: a sign-in with a password (org acme) and one at an
org's own OpenID Connect provider (org globex, a local oidc-provider-mock), each through consent to a
code that is then exchanged for a token. Also frames the consent page from another page (it must not
render). Prints a JSON report.

Usage: oauth_pages_check.py GATEWAY_URL PASSWORD_EMAIL PASSWORD IDP_SUBJECT CALLBACK_PORT SCREENSHOT_DIR
"""
import base64
import hashlib
import json
import os
import secrets
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlencode, urlparse

import httpx2
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

base, email, password, subject, callback_port, shots = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
os.makedirs(shots, exist_ok=True)
redirect = f"http://127.0.0.1:{callback_port}/cb"


class Callback(BaseHTTPRequestHandler):
    """The client's redirect URI (answers "ok"), and a page that frames another (`/frame?src=`)."""

    def do_GET(self):
        if self.path.startswith("/frame"):
            src = parse_qs(urlparse(self.path).query)["src"][0]
            body = f'<!doctype html><title>framing</title><iframe id="f" src="{src}" width="380" height="600"></iframe>'
        else:
            body = "<!doctype html><title>callback</title><p id='done'>ok</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", callback_port), Callback)
threading.Thread(target=server.serve_forever, daemon=True).start()

http = httpx2.Client(timeout=30)
client_id = http.post(base + "/oauth/register", json={"client_name": "Pages Check", "redirect_uris": [redirect]}).json()["client_id"]


def authorization():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    params = {
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect, "state": secrets.token_hex(8),
        "code_challenge": challenge, "code_challenge_method": "S256", "scope": "mcp", "resource": base + "/mcp",
    }
    return base + "/oauth/authorize?" + urlencode(params), verifier


def exchange(url: str, verifier: str):
    code = parse_qs(urlparse(url).query)["code"][0]
    token = http.post(base + "/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": redirect, "client_id": client_id,
    }).json()
    probe = http.post(
        base + "/mcp", headers={"Authorization": "Bearer " + token["access_token"], "Accept": "application/json, text/event-stream"},
        json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "pages-check", "version": "1"}}},
    )
    payload = token["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return probe.status_code, claims


def browser():
    options = Options()
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]:
        options.add_argument(argument)
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2, "touch": True}})
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


def fits(driver):
    return driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


report = {}
driver = browser()
try:
    wait = WebDriverWait(driver, 30)
    # 1. A password, for org acme (two orgs exist: the page asks which).
    url, verifier = authorization()
    driver.get(url)
    wait.until(ready.visibility_of_element_located((By.ID, "email")))
    driver.save_screenshot(os.path.join(shots, "1-sign-in.png"))
    report["sign_in_fits"] = fits(driver)
    report["asks_org"] = len(driver.find_elements(By.ID, "org")) == 1
    driver.find_element(By.ID, "org").send_keys("acme")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form[action='/oauth/sign-in'] button[type=submit]").click()
    allow = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "button[value=approve]")))
    driver.save_screenshot(os.path.join(shots, "2-consent.png"))
    report["consent_fits"] = fits(driver)
    report["consent_text"] = driver.find_element(By.TAG_NAME, "main").text
    allow.click()
    wait.until(ready.presence_of_element_located((By.ID, "done")))
    report["password_mcp_status"], claims = exchange(driver.current_url, verifier)
    report["password_claims"] = {key: claims.get(key) for key in ["org", "roles", "client_id", "aud"]}

    # 2. The consent page cannot be framed: the frame shows no Allow button.
    url, _ = authorization()
    driver.get(f"http://127.0.0.1:{callback_port}/frame?src=" + quote(url + "&prompt=consent", safe=""))
    wait.until(ready.presence_of_element_located((By.ID, "f")))
    driver.switch_to.frame(driver.find_element(By.ID, "f"))
    report["framed_allow_buttons"] = len(driver.find_elements(By.CSS_SELECTOR, "button[value=approve]"))
    driver.switch_to.default_content()
    driver.save_screenshot(os.path.join(shots, "3-framed.png"))
finally:
    driver.quit()

driver = browser()
try:
    wait = WebDriverWait(driver, 30)
    # 3. Org globex signs in at its identity provider.
    url, verifier = authorization()
    driver.get(url)
    wait.until(ready.visibility_of_element_located((By.ID, "org-sso"))).send_keys("globex")
    driver.save_screenshot(os.path.join(shots, "4-sign-in-choice.png"))
    driver.find_element(By.ID, "federated").click()
    # The provider's own page: who signs in.
    subject_field = wait.until(ready.visibility_of_element_located((By.NAME, "sub")))
    report["provider_page"] = driver.current_url.split("?")[0]
    driver.save_screenshot(os.path.join(shots, "5-provider.png"))
    subject_field.send_keys(subject)
    subject_field.submit()
    allow = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "button[value=approve]")))
    report["federated_consent_text"] = driver.find_element(By.TAG_NAME, "main").text
    driver.save_screenshot(os.path.join(shots, "6-federated-consent.png"))
    allow.click()
    wait.until(ready.presence_of_element_located((By.ID, "done")))
    report["federated_mcp_status"], claims = exchange(driver.current_url, verifier)
    report["federated_claims"] = {key: claims.get(key) for key in ["org", "roles", "client_id", "aud"]}
finally:
    driver.quit()
    server.shutdown()
report["screenshots"] = sorted(name for name in os.listdir(shots) if name.endswith(".png"))
print(json.dumps(report))
