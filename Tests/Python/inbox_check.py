"""Drives the approvals inbox in headless Chromium (Debian's chromium and chromedriver, selenium) at a
phone's size: signs in with an approver token to an empty inbox (prints "signed in"), waits for a
pending request to arrive on the live channel, saves a screenshot, approves it, and prints what it saw as JSON: {"cards", "text", "fits", "status"}.

Usage: inbox_check.py GATEWAY_URL APPROVER_TOKEN SCREENSHOT.png
"""
import json
import shutil
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

url, token, screenshot = sys.argv[1], sys.argv[2], sys.argv[3]
options = Options()
for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]:
    options.add_argument(argument)
# A phone's screen: 390 x 844 CSS pixels, touch, a mobile user agent.
options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2, "touch": True}})
options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
report = {}
try:
    driver.get(url + "/approvals")
    wait = WebDriverWait(driver, 30)
    wait.until(ready.visibility_of_element_located((By.ID, "token"))).send_keys(token)
    driver.find_element(By.ID, "signin-button").click()
    # Signed in to an empty inbox: the test now opens a request, which must arrive live.
    wait.until(ready.visibility_of_element_located((By.ID, "empty")))
    print("signed in", flush=True)
    card = WebDriverWait(driver, 60).until(ready.visibility_of_element_located((By.CSS_SELECTOR, "li.request")))
    report["cards"] = len(driver.find_elements(By.CSS_SELECTOR, "li.request"))
    report["text"] = card.text
    # A phone's width: nothing wider than the screen (no sideways scrolling).
    report["fits"] = driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    report["width"] = driver.execute_script("return window.innerWidth")
    driver.save_screenshot(screenshot)
    card.find_element(By.CSS_SELECTOR, "button.approve").click()
    wait.until(lambda d: "approved" in d.find_element(By.ID, "status").text)
    report["status"] = driver.find_element(By.ID, "status").text
finally:
    driver.quit()
print(json.dumps(report))
