"""Helpers of the browser and single sign-on tests (`test_browser.py`, `test_sso.py`).

- `planned_server`: a `palisade serve` whose port is known before it starts, so
  that the `--config` file (public_url, SSO redirect URIs) can name it.
- `write_portal_config`: the `--config` TOML with `public_url`, `[[oidc]]` and
  `[[saml]]` (the secrets in files beside it).
- `OidcTestIdp`: the OIDC test identity provider (`cargo build -p palisade-oidc
  --example test-idp`, path in PALISADE_TEST_IDP), which approves every
  authorization request at once.
- `saml_response`: a fresh signed SAMLResponse from pysaml2
  (`crates/palisade-saml/tests/fixtures/idp.py`, run with PALISADE_SAML_IDP_PYTHON
  or this interpreter; needs xmlsec1).
- `chromium` / `Shots`: headless Chromium through selenium and the system
  chromedriver (never a downloaded browser), and PNG screenshots of every page
  into `tests/e2e/screenshots/`.

A missing tool is a failure with a message saying how to get it, never a skip.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from palisade_harness import REPO_ROOT, Server, Store, child_env

SAML_FIXTURES = REPO_ROOT / "crates" / "palisade-saml" / "tests" / "fixtures"
SAML_IDP_PY = SAML_FIXTURES / "idp.py"
SAML_IDP_CERT = SAML_FIXTURES / "idp-cert.pem"
SAML_IDP_ENTITY_ID = "https://idp.example.test/saml"
SAML_IDP_SSO_URL = "https://idp.example.test/sso"
OIDC_CLIENT_ID = "palisade"
SESSION_COOKIE = "palisade_session"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMEDRIVER = os.environ.get("PALISADE_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM = os.environ.get("PALISADE_CHROMIUM", "/usr/bin/chromium")


# --------------------------------------------------------------------------- server + config


def planned_server(store: Store, *args: str) -> Server:
    """A server object with its port chosen but not started yet (call `.start()`).

    Registered with the store, so `new_store` stops it at teardown like any other."""
    srv = Server(store, list(args), tls=None, env=None)
    store.servers.append(srv)
    return srv


def write_portal_config(
    path: Path,
    *,
    public_url: str,
    oidc_issuer: str | None = None,
    oidc_secret: str | None = None,
    saml: bool = False,
) -> Path:
    """`public_url`, optionally one `[[oidc]]` and one `[[saml]]` provider, both named `corp`."""
    lines = [f"public_url = {json.dumps(public_url)}"]
    if oidc_issuer:
        secret_file = path.with_name(path.stem + "-oidc-secret")
        secret_file.write_text((oidc_secret or "") + "\n")
        secret_file.chmod(0o600)
        lines += [
            "",
            "[[oidc]]",
            'name = "corp"',
            f"issuer = {json.dumps(oidc_issuer)}",
            f"client_id = {json.dumps(OIDC_CLIENT_ID)}",
            f"client_secret_file = {json.dumps(str(secret_file))}",
            'default_roles = ["readonly"]',
            "auto_create = true",
        ]
    if saml:
        lines += [
            "",
            "[[saml]]",
            'name = "corp"',
            f"idp_entity_id = {json.dumps(SAML_IDP_ENTITY_ID)}",
            f"idp_sso_url = {json.dumps(SAML_IDP_SSO_URL)}",
            f"idp_certificate_file = {json.dumps(str(SAML_IDP_CERT))}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def create_local_user(store: Store, username: str, password: str, *, role: str = "readonly") -> dict:
    return store.cli_json(
        "user", "add", username, "--email", f"{username}@example.com", "--role", role, "--password-stdin",
        input=password + "\n",
    )


# --------------------------------------------------------------------------- OIDC test IdP


def test_idp_bin() -> str:
    path = os.environ.get("PALISADE_TEST_IDP") or str(REPO_ROOT / "target" / "debug" / "examples" / "test-idp")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"OIDC test identity provider not found at {path!r}: run "
            "`cargo build -p palisade-oidc --example test-idp` or set PALISADE_TEST_IDP",
            pytrace=False,
        )
    return path


test_idp_bin.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite the name


class OidcTestIdp:
    """`test-idp` as a child process; `.issuer` is what it printed (`listening on URL`)."""

    def __init__(self, *, client_secret: str, redirect_uri: str, users: list[str], log_dir: Path):
        self.argv = [
            test_idp_bin(), "--listen", "127.0.0.1:0", "--client-id", OIDC_CLIENT_ID,
            f"--client-secret={client_secret}", f"--redirect-uri={redirect_uri}",
        ]
        for u in users:
            self.argv += ["--user", u]
        self.stderr_path = log_dir / "test-idp.stderr"
        self.proc: subprocess.Popen | None = None
        self.issuer = ""

    def start(self, timeout: float = 20) -> "OidcTestIdp":
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=child_env()
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                m = re.match(rb"listening on (\S+)", line)
                if m:
                    self.issuer = m.group(1).decode()
                    return self
            if self.proc.poll() is not None:
                break
        self.stop()
        raise AssertionError(
            f"test-idp did not report its address (last line {line!r}); argv {self.argv}\n"
            f"stderr: {self.stderr_path.read_text(errors='replace')[-2000:]}"
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # it stops on ctrl-c
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> "OidcTestIdp":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --------------------------------------------------------------------------- SAML (pysaml2)


def saml_python() -> str:
    python = os.environ.get("PALISADE_SAML_IDP_PYTHON") or sys.executable
    if not shutil.which("xmlsec1") and not os.path.exists(os.environ.get("XMLSEC1", "/usr/bin/xmlsec1")):
        pytest.fail("xmlsec1 not found (Debian package `xmlsec1`; scripts/test installs it)", pytrace=False)
    probe = subprocess.run([python, "-c", "import saml2"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.fail(
            f"{python} cannot import pysaml2 (add `pysaml2` to the venv: scripts/test installs "
            f"tests/e2e/requirements.txt; or set PALISADE_SAML_IDP_PYTHON): {probe.stderr.strip()[-500:]}",
            pytrace=False,
        )
    return python


def saml_response(
    public_url: str,
    authn_request_url: str,
    *,
    username: str,
    attributes: dict[str, str] | None = None,
    xml: bool = False,
) -> str:
    """pysaml2's answer (base64, or the XML with `xml=True`) to the SP's redirect URL."""
    root = f"{public_url}/sso/saml/corp"
    argv = [
        saml_python(), str(SAML_IDP_PY), "--username", username,
        "--sp-entity-id", f"{root}/metadata", "--acs-url", f"{root}/acs",
        "--idp-entity-id", SAML_IDP_ENTITY_ID, "--idp-sso-url", SAML_IDP_SSO_URL,
        "--authn-request-url", authn_request_url,
    ]
    for k, v in (attributes or {}).items():
        argv += ["--attribute", f"{k}={v}"]
    if xml:
        argv.append("--xml")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"idp.py failed rc={proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout.strip()


def relay_state_of(redirect_url: str) -> str:
    q = parse_qs(urlsplit(redirect_url).query)
    assert "SAMLRequest" in q, f"no SAMLRequest in {redirect_url!r}"
    return q.get("RelayState", [""])[0]


def tamper_name_id(saml_b64: str) -> str:
    """The response with one character of the NameID changed (signature no longer matches)."""
    xml = base64.b64decode(saml_b64).decode("utf-8")
    m = re.search(r"(<(?:\w+:)?NameID\b[^>]*>)([^<]+)(</)", xml)
    assert m, f"no NameID in the response: {xml[:500]}"
    value = m.group(2)
    flipped = value[:-1] + ("x" if value[-1] != "x" else "y")
    xml = xml[: m.start(2)] + flipped + xml[m.end(2) :]
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")


# --------------------------------------------------------------------------- browser


def chromium(profile_dir: Path):
    """Headless Chromium (the Debian package) driven by the system chromedriver."""
    for tool, hint in ((CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")):
        if not os.access(tool, os.X_OK):
            pytest.fail(f"{tool} not found (Debian package `{hint}`; scripts/test installs it)", pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:  # pragma: no cover - the venv has it
        pytest.fail(f"selenium missing from the venv (tests/e2e/requirements.txt): {exc}", pytrace=False)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--no-default-browser-check", "--window-size=1024,900",
        f"--user-data-dir={profile_dir}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors, for failure messages
    service = Service(executable_path=CHROMEDRIVER, log_output=str(profile_dir.parent / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(30)
    return driver


_ip_counter = itertools.count(1)


def client_ip() -> str:
    """A distinct documentation address (TEST-NET-2) per client, sent as X-Forwarded-For to a
    portal started with `--trusted-proxy 127.0.0.1/32`, so that the per-address sign-in
    throttle (password and factor attempts) of one test does not spill into the next."""
    n = next(_ip_counter) + (os.getpid() % 50) * 250
    return f"198.51.{100 + (n // 250) % 100}.{n % 250 + 1}"


@contextlib.contextmanager
def browser(tmp_path: Path, *, forwarded_for: str | None = None) -> Iterator[Any]:
    """Chromium with a fresh profile; every request it sends carries `X-Forwarded-For`."""
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    driver = chromium(profile)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders", {"headers": {"X-Forwarded-For": forwarded_for or client_ip()}}
        )
        yield driver
    finally:
        driver.quit()


class Shots:
    """Saves a PNG of every page visited as screenshots/<prefix>-NN-<name>.png."""

    def __init__(self, driver: Any, prefix: str):
        self.driver = driver
        self.prefix = prefix
        self.n = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob(f"{prefix}-*.png"):
            old.unlink()

    def __call__(self, name: str) -> Path:
        self.n += 1
        path = SCREENSHOTS / f"{self.prefix}-{self.n:02d}-{name}.png"
        assert self.driver.save_screenshot(str(path)), f"screenshot {path} failed"
        return path


def wait_for(driver: Any, css: str, timeout: float = 15) -> Any:
    """The element matching `css`, once present; a failure shows where the browser is."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text if driver.find_elements(By.TAG_NAME, "body") else ""
        raise AssertionError(
            f"{css!r} did not appear within {timeout}s; at {driver.current_url!r} "
            f"(title {driver.title!r}); page text: {body[:1500]!r}; browser console: {console(driver)!r}"
        ) from None


def console(driver: Any) -> list[str]:
    """The browser console's messages since the last call (JavaScript errors included)."""
    try:
        return [f"{e.get('level')}: {e.get('message')}" for e in driver.get_log("browser")]
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        return [f"(console unavailable: {exc})"]


def wait_path(driver: Any, path: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while urlsplit(driver.current_url).path != path:
        if time.monotonic() > deadline:
            from selenium.webdriver.common.by import By

            raise AssertionError(
                f"expected to land on {path!r}, at {driver.current_url!r} (title {driver.title!r}); "
                f"page text: {driver.find_element(By.TAG_NAME, 'body').text[:1500]!r}"
            )
        time.sleep(0.05)
