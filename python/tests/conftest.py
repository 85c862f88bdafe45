"""Fixtures: the shell fixture of the other test scripts (scripts/lib/mef-fixture.sh: the one
openssl recipe of the manufacturer PKI) run once per session. It makes the manufacturer CA and
device certificate, starts the reference MEF (target/debug/onem2m-mef, or $ONEM2M_MEF_BIN) on
127.0.0.1 with the device identity registered and a KpmID/Kpm for its TLS-PSK listener
(PPSK-based RSPF), and prints the paths and values it made; it stops the MEF when its stdin
closes."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
# The source tree's package, unless the tests check an installed one (the wheel:
# scripts/python-tests.sh sets ONEM2M_EST_INSTALLED=1).
if not os.environ.get("ONEM2M_EST_INSTALLED"):
    sys.path.insert(0, str(REPO / "python"))

FIXTURE = REPO / "scripts" / "lib" / "mef-fixture.sh"
# The fixture's identities (its defaults): the device's CSE-ID, and the one the MEF provisions
# for the KpmID (TS-0003 8.3.2.1).
CSE_ID = "cse01.sp.example.com"
PSK_CSE_ID = "cse02.sp.example.com"
KPM_ID = "kpm-0001"

def openssl(*args, cwd=None) -> str:
    """Runs the openssl CLI; fails the test with its stderr if it fails."""
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed:\n{p.stdout}{p.stderr}")
    return p.stdout


def fixture_env() -> dict:
    """The environment of the shell fixture: the MEF binary, and the fixture's own defaults for
    the identities (not whatever a calling script exported)."""
    env = dict(os.environ, MEF_BIN=str(mef_binary()))
    env.update(MEF_SUBJECT_ID=CSE_ID, MEF_PSK_SUBJECT_ID=PSK_CSE_ID, KPM_ID=KPM_ID)
    return env


def make_ca(directory: Path, name: str) -> SimpleNamespace:
    """An ECDSA P-256 CA certificate and key (the shell fixture's fixture_make_ca)."""
    p = subprocess.run(
        [
            *("bash", "-c", 'source "$0" && fixture_make_ca "$1" "$2"'),
            *(str(FIXTURE), str(directory), name),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if p.returncode != 0:
        raise AssertionError(f"fixture_make_ca {directory} {name} failed:\n{p.stdout}{p.stderr}")
    return SimpleNamespace(cert=directory / f"{name}.pem", key=directory / f"{name}.key")


def mef_binary() -> Path:
    """$ONEM2M_MEF_BIN, else onem2m-mef in Cargo's debug target directory."""
    target = REPO / os.environ.get("CARGO_TARGET_DIR", "target")  # an absolute value wins
    path = Path(os.environ.get("ONEM2M_MEF_BIN", target / "debug" / "onem2m-mef"))
    if not path.exists():
        raise AssertionError(f"{path} does not exist: cargo build -p onem2m-mef")
    return path


@pytest.fixture(scope="session")
def fixture():
    """scripts/lib/mef-fixture.sh's mef_fixture_serve: the variables it printed, while the MEF
    it started runs."""
    proc = subprocess.Popen(
        ["bash", "-c", 'source "$0" && mef_fixture_serve', str(FIXTURE)],
        env=fixture_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        values = {}
        for line in proc.stdout:
            if line.strip() == "ready":
                break
            name, _, value = line.rstrip("\n").partition("=")
            values[name] = value
        else:
            proc.wait(timeout=30)
            raise AssertionError(f"the MEF fixture did not start (exit status {proc.returncode})")
        yield values
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()


@pytest.fixture(scope="session")
def pki(fixture) -> SimpleNamespace:
    """Manufacturer CA and a device certificate it signed (a plain end-entity certificate):
    the third-party client credentials of the certificate-based RSPF; and another CA,
    unrelated to the MEF (a wrong trust anchor)."""
    return SimpleNamespace(
        manufacturer_ca=Path(fixture["MANUFACTURER_CA"]),
        device_cert=Path(fixture["DEVICE_CERT"]),
        device_key=Path(fixture["DEVICE_KEY"]),
        other_ca=Path(fixture["OTHER_CA"]),
    )


@pytest.fixture(scope="session")
def mef(fixture):
    """The reference MEF on 127.0.0.1 trusting the manufacturer CA, with the device's CSE-ID
    registered, and its TLS-PSK listener knowing KPM_ID (its Kpm is ``kpm``, 32 random bytes,
    registered for PSK_CSE_ID)."""
    assert fixture["MEF_SUBJECT_ID"] == CSE_ID and fixture["KPM_ID"] == KPM_ID
    assert fixture["MEF_PSK_SUBJECT_ID"] == PSK_CSE_ID
    return SimpleNamespace(
        # localhost: a name the MEF's server certificate carries (RFC 7030 3.6.1).
        url=fixture["MEF_URL"],
        ca=Path(fixture["MEF_CA"]),
        data_dir=Path(fixture["MEF_DATA_DIR"]),
        # TLS-PSK: no server certificate; the host name only goes into SNI.
        psk_url=fixture["MEF_PSK_URL"],
        kpm_id=KPM_ID,
        kpm=bytes.fromhex(fixture["KPM_HEX"]),
    )
