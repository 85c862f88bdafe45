"""The PPSK-based RSPF (TS-0003 8.3.2.1) through the Python binding: a device holding only
(KpmID, Kpm) and the MEF URI provisions over TLS-PSK (RFC 7030 3.3.3), then re-provisions over
the MEF's certificate port with what was installed. Needs a library built with the cargo
feature ``psk`` (scripts/python-tests.sh builds it so)."""

import stat
import subprocess
from pathlib import Path

import pytest

from conftest import PSK_CSE_ID, openssl

from onem2m_est import (
    BadArgumentsError,
    Client,
    CmdStatus,
    Config,
    Result,
    ServerSideError,
)

STORE_FILES = ("cert.pem", "key.pem", "trust-anchors.pem")


def psk_config(mef, store: Path, **kw) -> Config:
    # Only the KpmID, the Kpm and the MEF URI: no trust anchors, no client certificate, no
    # subject (the MEF asks for the KpmID's identity in its CSR attributes).
    args = {
        "psk": (mef.kpm_id, mef.kpm),
        "store_dir": store,
        "connect_timeout": 10,
        "response_timeout": 30,
    }
    args.update(kw)
    return Config(mef.psk_url, **args)


def fingerprint(cert: Path) -> str:
    return openssl("x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256")


def check_installed(store: Path, mef_ca: Path) -> None:
    cert, key, ta = (store / f for f in STORE_FILES)
    for f in (cert, key, ta):
        assert f.is_file(), f
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # The trust anchors fetched over TLS-PSK are the MEF CA, and the certificate chains to them.
    assert fingerprint(ta) == fingerprint(mef_ca)
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ta), str(cert)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The identity registered for the KpmID (TS-0003 10.1.1.7: CSE-ID as dNSName).
    san = openssl("x509", "-in", str(cert), "-noout", "-ext", "subjectAltName")
    assert f"DNS:{PSK_CSE_ID}" in san
    assert openssl("x509", "-in", str(cert), "-noout", "-pubkey") == openssl(
        "pkey", "-in", str(key), "-pubout"
    )


def test_psk_provisioning_then_certificate_reprovisioning(mef, tmp_path):
    store = tmp_path / "cred"
    with Client(psk_config(mef, store)) as client:
        # /cacerts and /csrattrs over TLS-PSK install nothing.
        certs = client.cacerts()
        assert len(certs) == 1
        assert client.csrattrs().der[0] == 0x30  # CsrAttrs ::= SEQUENCE (RFC 7030 4.5.2)
        assert not store.exists() or not any(store.iterdir())
        client.provision()
    check_installed(store, mef.ca)
    first_serial = openssl("x509", "-in", str(store / "cert.pem"), "-noout", "-serial")
    first_key = (store / "key.pem").read_bytes()

    # Re-provisioning on the certificate port, authenticated with the installed certificate;
    # the MEF authenticated with the installed trust anchors.
    with Client(Config(mef.url, store_dir=store, connect_timeout=10)) as client:
        client.reprovision("renew")
    check_installed(store, mef.ca)
    assert openssl("x509", "-in", str(store / "cert.pem"), "-noout", "-serial") != first_serial
    assert (store / "key.pem").read_bytes() == first_key


def test_psk_as_bytearray_and_server_keygen(mef, tmp_path):
    store = tmp_path / "cred"
    kpm = bytearray(mef.kpm)
    with Client(psk_config(mef, store, psk=(mef.kpm_id, kpm))) as client:
        client.provision(server_keygen=True)
    # The caller's buffer is the caller's: left as it was.
    assert kpm == mef.kpm
    check_installed(store, mef.ca)


def test_wrong_kpm_is_server_side_and_installs_nothing(mef, tmp_path):
    store = tmp_path / "cred"
    wrong = bytes([mef.kpm[0] ^ 1]) + mef.kpm[1:]
    client = Client(psk_config(mef, store, psk=(mef.kpm_id, wrong)))
    with client, pytest.raises(ServerSideError) as info:
        client.provision()
    err = info.value
    assert err.result == Result.ERR_TLS, err
    assert err.cmd_status == CmdStatus.CERT_PROV_SERVER_ERROR
    assert "PSK" in err.message
    # Neither key appears in the message.
    for key in (wrong, mef.kpm):
        assert key.hex() not in err.message.lower()
    assert not any((store / f).exists() for f in STORE_FILES)


def test_unknown_kpm_id_is_server_side(mef, tmp_path):
    client = Client(psk_config(mef, tmp_path / "cred", psk=("kpm-unknown", mef.kpm)))
    with client, pytest.raises(ServerSideError) as info:
        client.cacerts()
    assert info.value.result == Result.ERR_TLS


def test_bad_psk_arguments(mef, pki, tmp_path):
    store = tmp_path / "cred"
    # Shorter than 16 bytes (RFC 4279 7.2), longer than 64 (RFC 4279 5.3), empty, an empty or
    # control-character KpmID: refused when the client is made, before any I/O.
    for psk in (
        (mef.kpm_id, mef.kpm[:15]),
        (mef.kpm_id, bytes(65)),
        (mef.kpm_id, b""),
        ("", mef.kpm),
        ("kpm\n0001", mef.kpm),
        ("kpm\x000001", mef.kpm),
    ):
        with pytest.raises(BadArgumentsError) as info:
            Client(psk_config(mef, store, psk=psk))
        assert info.value.cmd_status == CmdStatus.UNACCEPTABLE_ARGUMENTS
        assert mef.kpm.hex() not in str(info.value).lower()
    # With a client certificate the RSPF is ambiguous.
    with pytest.raises(BadArgumentsError) as info:
        Client(
            psk_config(
                mef,
                store,
                client_cert_pem=pki.device_cert,
                client_key_pem=pki.device_key,
            )
        )
    assert "ambiguous" in info.value.message
    # Wrong Python types: bad arguments too (every failure is a documented class).
    for psk in ((mef.kpm_id, mef.kpm.hex()), (b"kpm-0001", mef.kpm), (mef.kpm_id,), mef.kpm):
        with pytest.raises(BadArgumentsError):
            Client(psk_config(mef, store, psk=psk))
    assert not store.exists() or not any(store.iterdir())


def test_repr_never_shows_the_kpm(mef, tmp_path):
    text = repr(psk_config(mef, tmp_path))
    assert mef.kpm_id in text and "<redacted>" in text
    assert mef.kpm.hex() not in text and repr(mef.kpm) not in text
