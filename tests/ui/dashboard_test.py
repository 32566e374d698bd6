#!/usr/bin/python3
"""The dashboard in a real browser (Debian's chromium + chromedriver through python3-selenium),
against a real mallornd on a quick-start store made from ../shared/models.

Checks: the security headers on /ui/; a wrong token shows an error and no data; with the right
token every model is listed with the device counts the simulated devices reported; the patches,
devices and device pages show the server's data; a rollout paused from the UI (confirmed in the
dialog) is paused in the API. Saves a screenshot of each page into $UI_SCREENSHOTS.

usage: dashboard_test.py BUILD_DIR MODELS_DIR   (run by ctest as ui.dashboard)
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BUILD = Path(sys.argv[1]).resolve()
MODELS_SRC = Path(sys.argv[2]).resolve()
SHOTS = Path(os.environ.get("UI_SCREENSHOTS", BUILD / "ui-screenshots"))
PAIRS = ["coral-mnv2-quant_2020-to-2021a", "tfm-hello-world-int8", "tfm-retinaface_a-to-b"]
TOKEN = "dashboard-test-token-0123456789"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def http(base, path, body=None, token=None, method=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method or ("POST" if body is not None else "GET"))
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, dict(r.headers), (json.loads(raw) if raw and raw[:1] in b"{[" else raw)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, dict(e.headers), json.loads(raw)
        except ValueError:
            return e.code, dict(e.headers), raw


def make_store(root):
    models = {}
    for name in PAIRS:
        pair = MODELS_SRC / "pairs" / name
        old = next(pair.glob("old.*"))
        new = next(pair.glob("new.*"))
        d = root / "models" / name
        d.mkdir(parents=True)
        os.symlink(old, d / ("1" + old.suffix))
        os.symlink(new, d / ("2" + new.suffix))
        models[name] = (old, new)
    return models


def start_server(root):
    (root / "token").write_text(TOKEN + "\n")
    os.chmod(root / "token", 0o600)
    port_file = root / "port"
    log = open(root / "mallornd.log", "w")
    proc = subprocess.Popen([str(BUILD / "bin" / "mallornd"), "--models", str(root / "models"), "--data", str(root / "data"),
                             "--listen", "127.0.0.1:0", "--port-file", str(port_file), "--admin-token-file",
                             str(root / "token"), "--rate-limit", "0"], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        if port_file.exists() and port_file.read_text().strip():
            base = "http://127.0.0.1:" + port_file.read_text().strip()
            try:
                if http(base, "/healthz")[0] == 200:
                    return proc, base
            except OSError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("mallornd did not start; log:\n" + (root / "mallornd.log").read_text())


def browser():
    opts = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1000"]:
        opts.add_argument(flag)
    opts.add_argument("--user-data-dir=" + tempfile.mkdtemp(prefix="mallorn-ui-chrome-"))
    opts.binary_location = "/usr/bin/chromium"
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def wait_text(driver, css, text, timeout=15):
    WebDriverWait(driver, timeout).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))


def shot(driver, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def main():
    root = Path(tempfile.mkdtemp(prefix="mallorn-ui-test-"))
    server = None
    driver = None
    try:
        make_store(root)
        server, base = start_server(root)

        # Headers the dashboard relies on.
        status, headers, _ = http(base, "/ui/")
        csp = headers.get("Content-Security-Policy", "")
        check(status == 200, "/ui/ answers 200")
        check("script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp,
              "/ui/ has a strict Content-Security-Policy: " + csp)
        check(headers.get("X-Frame-Options") == "DENY", "/ui/ cannot be framed")
        check(http(base, "/ui/../index.sqlite")[0] in (400, 404), "/ui/ does not serve files outside the dashboard")
        check(http(base, "/admin/builds")[0] == 401, "the dashboard's admin views need the token")

        # Simulated devices: versions 1 and 2 of the first model in a known split, one device on
        # each of the others, one failure with a hostile-looking error text.
        expected = {}
        m0 = PAIRS[0]
        for i in range(7):
            to_v, state = ("2", "committed") if i < 4 else ("2", "failed")
            http(base, "/report", {"device_id": f"dev-{i:03}", "model": m0, "from_version": "1", "to_version": to_v,
                                   "state": state, "error": "<img src=x onerror=alert(1)>" if state == "failed" else ""})
        expected[m0] = {"2": 4, "1": 3}
        for k, m in enumerate(PAIRS[1:]):
            http(base, "/report", {"device_id": f"edge-{k}", "model": m, "from_version": "1", "to_version": "2",
                                   "state": "committed"})
            expected[m] = {"2": 1}

        driver = browser()
        driver.get(base + "/ui")  # redirected to /ui/
        WebDriverWait(driver, 15).until(EC.visibility_of_element_located((By.ID, "token")))

        # A wrong token: an error, no data.
        driver.find_element(By.ID, "token").send_keys("not-the-token")
        driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        wait_text(driver, "#login-error", "refused")
        check(not driver.find_element(By.ID, "page").is_displayed(), "a wrong token shows no page")
        check(m0 not in driver.find_element(By.TAG_NAME, "body").text, "a wrong token shows no model data")
        shot(driver, "login-refused")

        # The right token: every model with its device counts.
        tok = driver.find_element(By.ID, "token")
        tok.clear()
        tok.send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        wait_text(driver, "#page", "Model " + PAIRS[-1])
        check("?" not in driver.current_url and TOKEN not in driver.current_url, "the token never appears in the URL")
        page = driver.find_element(By.ID, "page")
        for m, counts in expected.items():
            table = page.find_element(By.XPATH, f".//table[caption='Versions of {m}']")
            rows = {}
            for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
                cells = [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                rows[cells[1]] = int(cells[-1])
            check(rows.get("1", 0) == counts.get("1", 0) and rows.get("2", 0) == counts.get("2", 0),
                  f"fleet page: {m} device counts {rows} == {counts}")
        check(len(page.find_elements(By.CSS_SELECTOR, "svg.chart")) >= len(expected), "fleet page draws a chart per model")
        shot(driver, "fleet")

        # A patch, so the Patches page has a row: ask until the on-demand build is ready.
        old = next((MODELS_SRC / "pairs" / m0).glob("old.*"))
        import hashlib
        sha = hashlib.sha256(old.read_bytes()).hexdigest()
        for _ in range(600):
            if http(base, "/check-update", {"sha256": sha, "model": m0, "device_id": "dev-000"})[0] == 200:
                break
            time.sleep(0.1)
        driver.get(base + "/ui/#/patches")
        wait_text(driver, "#page", "Cached patches")
        wait_text(driver, "#page", m0)
        text = driver.find_element(By.ID, "page").text
        check("1 → 2" in text and "Saved per download" in text, "patches page lists the built pair and its saving")
        shot(driver, "patches")

        # Devices: search, then one device's history; the hostile error text is shown, not run.
        driver.get(base + "/ui/#/devices")
        wait_text(driver, "#page", "dev-006")
        search = driver.find_element(By.ID, "device-search")
        search.send_keys("failed")
        wait_text(driver, "#device-results", "3 of")
        rows = driver.find_elements(By.CSS_SELECTOR, "#device-results tbody tr")
        check(len(rows) == 3, f"devices search 'failed' shows the 3 failed devices (saw {len(rows)})")
        check("<img src=x onerror=alert(1)>" in driver.find_element(By.ID, "device-results").text,
              "a device's error text is shown as text")
        shot(driver, "devices")
        driver.find_element(By.LINK_TEXT, "dev-006").click()
        wait_text(driver, "#page", "Report history")
        check("failed" in driver.find_element(By.ID, "page").text, "device page shows the report history")
        shot(driver, "device")

        # Rollouts: pause one from the UI, see the API agree.
        status, _, listing = http(base, "/admin/rollouts", token=TOKEN)
        if status == 404:
            check(False, "the server has a rollout API (/admin/rollouts answered 404)")
        else:
            status, _, created = http(base, "/admin/rollouts", {"model": m0, "version": "2", "stages": [10, 50, 100],
                                                                "max_failure_rate": 0.2, "min_reports": 5}, token=TOKEN)
            check(status == 201, f"a rollout is created through the API ({status} {created})")
            rid = str(created.get("id"))
            driver.get(base + "/ui/#/rollouts")
            button = WebDriverWait(driver, 15).until(
                EC.element_to_be_clickable((By.CSS_SELECTOR, f"button[data-action=pause][data-rollout='{rid}']")))
            shot(driver, "rollouts")
            button.click()
            WebDriverWait(driver, 5).until(EC.visibility_of_element_located((By.ID, "confirm-ok")))
            driver.find_element(By.ID, "confirm-ok").click()
            state = None
            for _ in range(100):
                state = http(base, f"/admin/rollouts/{rid}", token=TOKEN)[2]
                state = state.get("state") if isinstance(state, dict) else None
                if state == "paused":
                    break
                time.sleep(0.1)
            check(state == "paused", f"pausing from the UI pauses the rollout in the API (state {state})")
            wait_text(driver, f"span[data-state]", "paused")
            shot(driver, "rollout-paused")

        # Phone width: no horizontal scrolling of the page itself.
        driver.set_window_size(390, 844)
        driver.get(base + "/ui/#/fleet")
        wait_text(driver, "#page", "Model " + m0)
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        check(overflow <= 1, f"the fleet page fits a phone's width (overflow {overflow}px)")
        shot(driver, "fleet-phone")

        # Network entries are the API's own answers (the demo probe's 401); anything else that is
        # SEVERE is a script error or a Content-Security-Policy violation.
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE" and e.get("source") != "network"]
        check(not errors, f"no script errors or CSP violations in the browser console: {errors}")
    except Exception as e:  # a timeout: keep what the browser showed, for the log
        check(False, f"{type(e).__name__}: {e}")
        if driver:
            shot(driver, "failure")
            print("page text:", driver.find_element(By.TAG_NAME, "body").text[:2000])
            print("console:", driver.get_log("browser"))
    finally:
        if driver:
            driver.quit()
        if server:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if failures:
            print((root / "mallornd.log").read_text()[-4000:] if (root / "mallornd.log").exists() else "")
        shutil.rmtree(root, ignore_errors=True)
    return failures


if __name__ == "__main__":
    fails = main()
    print(f"screenshots: {SHOTS}")
    sys.exit(1 if fails else 0)
