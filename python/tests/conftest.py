"""Fixtures: a manufacturer PKI made with the openssl CLI and the reference MEF
(target/debug/onem2m-mef, or $ONEM2M_MEF_BIN) on 127.0.0.1 with the device identity registered,
and a KpmID/Kpm registered for its TLS-PSK listener (PPSK-based RSPF)."""

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

CSE_ID = "cse01.sp.example.com"
# The identity the MEF provisions for the KpmID (TS-0003 8.3.2.1).
PSK_CSE_ID = "cse02.sp.example.com"
KPM_ID = "kpm-0001"

CA_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
O = Example Manufacturer
CN = Example Manufacturer Device CA
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_device]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def openssl(*args, cwd=None) -> str:
    """Runs the openssl CLI; fails the test with its stderr if it fails."""
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed:\n{p.stdout}{p.stderr}")
    return p.stdout


def make_ca(directory: Path, name: str) -> SimpleNamespace:
    """An ECDSA P-256 CA certificate and key."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.cnf").write_text(CA_CNF)
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        str(key),
        "-sha256",
        "-days",
        "30",
        "-config",
        str(directory / "ca.cnf"),
        "-extensions",
        "v3_ca",
        "-subj",
        f"/O=Example Manufacturer/CN={name}",
        "-out",
        str(cert),
    )
    return SimpleNamespace(cert=cert, key=key)


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> SimpleNamespace:
    """Manufacturer CA and a device certificate it signed (a plain end-entity certificate):
    the third-party client credentials of the certificate-based RSPF."""
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "manufacturer-ca")
    device_key, device_csr, device_cert = d / "device.key", d / "device.csr", d / "device.pem"
    openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        str(device_key),
    )
    openssl(
        "req",
        "-new",
        "-key",
        str(device_key),
        "-subj",
        "/O=Example Manufacturer/CN=device-0001",
        "-out",
        str(device_csr),
    )
    openssl(
        "x509",
        "-req",
        "-in",
        str(device_csr),
        "-CA",
        str(ca.cert),
        "-CAkey",
        str(ca.key),
        "-CAcreateserial",
        "-sha256",
        "-days",
        "30",
        "-extfile",
        str(d / "ca.cnf"),
        "-extensions",
        "v3_device",
        "-out",
        str(device_cert),
    )
    # Another CA, unrelated to the MEF: a wrong trust anchor.
    other = make_ca(d / "other", "other-ca")
    return SimpleNamespace(
        manufacturer_ca=ca.cert, device_cert=device_cert, device_key=device_key, other_ca=other.cert
    )


def mef_binary() -> Path:
    """$ONEM2M_MEF_BIN, else onem2m-mef in Cargo's debug target directory."""
    target = REPO / os.environ.get("CARGO_TARGET_DIR", "target")  # an absolute value wins
    path = Path(os.environ.get("ONEM2M_MEF_BIN", target / "debug" / "onem2m-mef"))
    if not path.exists():
        raise AssertionError(f"{path} does not exist: cargo build -p onem2m-mef")
    return path


@pytest.fixture(scope="session")
def mef(pki, tmp_path_factory):
    """The reference MEF on 127.0.0.1:0 trusting the manufacturer CA, with the device's
    CSE-ID registered, and a TLS-PSK listener on 127.0.0.1:0 knowing KPM_ID (its Kpm is
    ``kpm``, 32 random bytes, registered for PSK_CSE_ID)."""
    binary = mef_binary()
    data = tmp_path_factory.mktemp("mef")
    kpm = os.urandom(32)
    kpm_file = data / "kpm.hex"
    kpm_file.touch(mode=0o600)
    kpm_file.write_text(kpm.hex())
    subprocess.run(
        [
            str(binary),
            "psk",
            "add",
            "--data-dir",
            str(data),
            "--kpm-id",
            KPM_ID,
            "--kpm-file",
            str(kpm_file),
            "--subject-type",
            "cse",
            "--subject-id",
            PSK_CSE_ID,
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            str(binary),
            "identity",
            "add",
            "--data-dir",
            str(data),
            "--client-cert",
            str(pki.device_cert),
            "--subject-type",
            "cse",
            "--subject-id",
            CSE_ID,
        ],
        check=True,
        capture_output=True,
    )
    stderr = open(data / "mef.err", "wb")
    proc = subprocess.Popen(
        [
            str(binary),
            "--listen",
            "127.0.0.1:0",
            "--psk-listen",
            "127.0.0.1:0",
            "--data-dir",
            str(data),
            "--client-trust",
            str(pki.manufacturer_ca),
        ],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    try:
        addr = psk_addr = ca = None
        # The MEF prints "listening on ADDR", "psk listening on ADDR" then
        # "CA certificate: PATH" when ready.
        for line in proc.stdout:
            if line.startswith("listening on "):
                addr = line[len("listening on ") :].strip()
            elif line.startswith("psk listening on "):
                psk_addr = line[len("psk listening on ") :].strip()
            elif line.startswith("CA certificate: "):
                ca = Path(line[len("CA certificate: ") :].strip())
                break
        if addr is None or psk_addr is None or ca is None:
            proc.wait(timeout=10)
            raise AssertionError(
                f"the MEF did not start: {(data / 'mef.err').read_text(errors='replace')}"
            )
        port = addr.rsplit(":", 1)[1]
        yield SimpleNamespace(
            # localhost: a name the MEF's server certificate carries (RFC 7030 3.6.1).
            url=f"https://localhost:{port}/.well-known/est",
            ca=ca,
            data_dir=data,
            # TLS-PSK: no server certificate; the host name only goes into SNI.
            psk_url=f"https://localhost:{psk_addr.rsplit(':', 1)[1]}/.well-known/est",
            kpm_id=KPM_ID,
            kpm=kpm,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
        stderr.close()
