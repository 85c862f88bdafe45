"""The Python binding against the reference MEF: Initial Certificate Provisioning and
Re-Provisioning (TS-0003 8.3.6.2), /cacerts, /csrattrs, and the error classes (8.3.9.7)."""

import re
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import CSE_ID, openssl

import onem2m_est
from onem2m_est import (
    BadArgumentsError,
    Client,
    ClientSideError,
    CmdStatus,
    Config,
    EstError,
    LogLevel,
    Result,
    ServerSideError,
    SubjectType,
)

# DER of the challengePassword attribute OID 1.2.840.113549.1.9.7 (RFC 2985).
CHALLENGE_PASSWORD_OID = bytes.fromhex("06092a864886f70d010907")


def config(mef, pki, store_dir, **kw) -> Config:
    args = dict(
        trust_anchors_pem=mef.ca,
        client_cert_pem=pki.device_cert,
        client_key_pem=pki.device_key.read_bytes(),
        subject=(SubjectType.CSE, CSE_ID),
        store_dir=store_dir,
        connect_timeout=10,
        response_timeout=30,
    )
    args.update(kw)
    return Config(mef.url, **args)


def cert_public_key(cert: Path) -> str:
    return openssl("x509", "-in", str(cert), "-noout", "-pubkey")


def key_public_key(key: Path) -> str:
    return openssl("pkey", "-in", str(key), "-pubout")


def serial(cert: Path) -> str:
    return openssl("x509", "-in", str(cert), "-noout", "-serial")


def check_installed(store: Path, mef_ca: Path) -> None:
    """The three files of the built-in store, consistent with each other and the MEF."""
    cert, key, ta = store / "cert.pem", store / "key.pem", store / "trust-anchors.pem"
    for f in (cert, key, ta):
        assert f.is_file(), f
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # The issued certificate chains to the installed trust anchors.
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ta), str(cert)], capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The installed trust anchors are the MEF CA (from /cacerts).
    assert openssl("x509", "-in", str(ta), "-noout", "-fingerprint", "-sha256") == openssl(
        "x509", "-in", str(mef_ca), "-noout", "-fingerprint", "-sha256"
    )
    # The CSE-ID is the subjectAltName dNSName (TS-0003 10.1.1.7).
    san = openssl("x509", "-in", str(cert), "-noout", "-ext", "subjectAltName")
    assert f"DNS:{CSE_ID}" in san
    assert cert_public_key(cert) == key_public_key(key)


def test_version_and_library():
    assert re.fullmatch(r"\d+\.\d+\.\d+", onem2m_est.version())
    assert "onem2m_est" in onem2m_est.library_path()


def test_provision_renew_rekey(mef, pki, tmp_path):
    store = tmp_path / "cred"
    messages = []
    cfg = config(mef, pki, store, log=lambda level, msg: messages.append((level, msg)))
    with Client(cfg) as client:
        client.provision()
        check_installed(store, mef.ca)
        assert client.last_handshakes >= 1
        first_serial, first_key = serial(store / "cert.pem"), key_public_key(store / "key.pem")

        client.reprovision("renew")
        check_installed(store, mef.ca)
        assert serial(store / "cert.pem") != first_serial
        assert key_public_key(store / "key.pem") == first_key  # same key

        client.reprovision("rekey")
        check_installed(store, mef.ca)
        assert key_public_key(store / "key.pem") != first_key  # new key
    assert messages, "the log callable received nothing"
    assert all(isinstance(level, LogLevel) and level <= LogLevel.INFO for level, _ in messages)
    # The log never carries the private key.
    key_body = "".join(pki.device_key.read_text().splitlines()[1:-1])
    assert not any(key_body[:32] in m for _, m in messages)


def test_server_keygen(mef, pki, tmp_path):
    store = tmp_path / "cred"
    with Client(config(mef, pki, store)) as client:
        client.provision(server_keygen=True)
        check_installed(store, mef.ca)
        first_key = key_public_key(store / "key.pem")
        client.reprovision("serverkeygen")
        check_installed(store, mef.ca)
        assert key_public_key(store / "key.pem") != first_key


def test_cacerts_and_csrattrs(mef, pki, tmp_path):
    with Client(config(mef, pki, tmp_path / "cred")) as client:
        certs = client.cacerts()
        assert len(certs) == 1
        (tmp_path / "cacert.pem").write_text(certs[0])
        assert openssl(
            "x509", "-in", str(tmp_path / "cacert.pem"), "-noout", "-fingerprint", "-sha256"
        ) == openssl("x509", "-in", str(mef.ca), "-noout", "-fingerprint", "-sha256")
        attrs = client.csrattrs()
        assert attrs.der[0] == 0x30  # CsrAttrs ::= SEQUENCE (RFC 7030 4.5.2)
        assert CHALLENGE_PASSWORD_OID in attrs.der
        # Decoded as the CLI shows it (issue #14).
        assert attrs.challenge_password == "supplied", attrs
        assert attrs.subject_alt_name == f"DNS:{CSE_ID}", attrs
        assert "Some(" not in repr(attrs)
    # Nothing was installed by these two.
    assert not (tmp_path / "cred" / "cert.pem").exists()


def test_wrong_trust_anchor_is_server_side_and_installs_nothing(mef, pki, tmp_path):
    store = tmp_path / "cred"
    with Client(config(mef, pki, store, trust_anchors_pem=pki.other_ca.read_text())) as client:
        with pytest.raises(ServerSideError) as info:
            client.provision()
    err = info.value
    assert isinstance(err, EstError)
    assert err.cmd_status == CmdStatus.CERT_PROV_SERVER_ERROR
    assert err.result in (Result.ERR_SERVER_NOT_AUTHORIZED, Result.ERR_TLS), err
    assert err.message
    assert not any(
        (store / f).exists() for f in ("cert.pem", "key.pem", "trust-anchors.pem", "current")
    )


def test_bad_arguments(mef, pki, tmp_path):
    with pytest.raises(BadArgumentsError) as info:
        Client(config(mef, pki, tmp_path / "a", subject=(SubjectType.CSE, "*.sp.example.com")))
    assert info.value.cmd_status == CmdStatus.UNACCEPTABLE_ARGUMENTS
    with pytest.raises(BadArgumentsError):
        Client(Config("not a uri", store_dir=tmp_path / "b"))
    with pytest.raises(BadArgumentsError):
        Client(config(mef, pki, tmp_path / "c", subject=(99, CSE_ID)))
    with pytest.raises(BadArgumentsError):
        Client(config(mef, pki, tmp_path / "c", connect_timeout=0))
    with pytest.raises(BadArgumentsError):
        Client(config(mef, pki, tmp_path / "c", max_poll_attempts=-1))
    with pytest.raises(BadArgumentsError):
        Client(config(mef, pki, tmp_path / "c", client_key_pem=None))
    with Client(config(mef, pki, tmp_path / "d")) as client:
        with pytest.raises(BadArgumentsError):
            client.reprovision("sideways")
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_onem2m_identity_forms_are_accepted(mef, pki, tmp_path):
    # TS-0001 7.2 absolute forms, mapped to one subjectAltName by the library (proto::identity).
    for subject in (
        (SubjectType.AE, "//example.net/mn-cse/CAE-device1"),
        (SubjectType.CSE, "//example.net/mn-cse"),
        (SubjectType.NODE, "1.3.6.1.4.1.99999.1"),
    ):
        with Client(config(mef, pki, tmp_path / "a", subject=subject)):
            pass
    # SP-relative forms need the SP-ID; a single label is not a public domain name. (A
    # configuration setter has no handle for a detailed message: the result code is all.)
    for subject in ((SubjectType.AE, "/mn-cse/CAE-device1"), (SubjectType.CSE, "mn-cse")):
        with pytest.raises(BadArgumentsError) as info:
            Client(config(mef, pki, tmp_path / "b", subject=subject))
        assert info.value.cmd_status == CmdStatus.UNACCEPTABLE_ARGUMENTS
        # With the SP-ID they resolve against it.
        with Client(config(mef, pki, tmp_path / "c", subject=subject, sp_id="//example.net")):
            pass
    with pytest.raises(BadArgumentsError):
        Client(config(mef, pki, tmp_path / "d", sp_id="example"))


def test_cert_prov_from_another_mef_is_unacceptable(mef, pki, tmp_path):
    # TS-0003 8.3.9.7: the base URI's FQDN must be that of the MEF issuing the command. The
    # MEF at mef.url (localhost) is up and would enrol us: the refusal is the argument check.
    store = tmp_path / "cred"
    with Client(config(mef, pki, store, mef_fqdn="mef.example.org")) as client:
        with pytest.raises(BadArgumentsError) as info:
            client.provision()
        assert info.value.cmd_status == CmdStatus.UNACCEPTABLE_ARGUMENTS
        assert info.value.result == Result.ERR_INVALID_ARGUMENT
        assert "mef.example.org" in info.value.message
    assert not (store / "cert.pem").exists()
    with Client(config(mef, pki, store, mef_fqdn="localhost")) as client:
        client.provision()
        client.reprovision("renew")
    check_installed(store, mef.ca)
    with pytest.raises(BadArgumentsError):
        Client(config(mef, pki, store, mef_fqdn=""))


def test_reprovision_before_provision_is_client_side(mef, pki, tmp_path):
    with Client(config(mef, pki, tmp_path / "cred")) as client:
        with pytest.raises(ClientSideError) as info:
            client.reprovision("rekey")
    assert info.value.result == Result.ERR_NOT_PROVISIONED
    assert info.value.cmd_status == CmdStatus.CERT_PROV_CLIENT_ERROR


def test_closed_client(mef, pki, tmp_path):
    client = Client(config(mef, pki, tmp_path / "cred"))
    client.close()
    client.close()
    with pytest.raises(ValueError):
        client.provision()


def test_log_exceptions_are_ignored(mef, pki, tmp_path):
    calls = []

    def log(level, message):
        calls.append(message)
        raise RuntimeError("a broken log handler")

    store = tmp_path / "cred"
    with Client(config(mef, pki, store, log=log, log_level=LogLevel.DEBUG)) as client:
        client.provision()
    assert calls
    check_installed(store, mef.ca)


def test_clients_in_parallel_threads(mef, pki, tmp_path):
    """Two handles used at the same time from two threads (the GIL is released during a call);
    each handle's log callable gets the messages of its own calls only (the library routes
    them by the calling thread)."""
    results, logs = {}, {0: [], 1: []}

    def run(i):
        cfg = config(
            mef,
            pki,
            tmp_path / f"cred{i}",
            log=lambda level, msg: logs[i].append((threading.get_ident(), msg)),
        )
        try:
            with Client(cfg) as client:
                client.provision()
                client.reprovision("rekey")
            results[i] = threading.get_ident()
        except Exception as e:  # reported below with the thread's index
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in (0, 1):
        assert isinstance(results[i], int), results[i]
        check_installed(tmp_path / f"cred{i}", mef.ca)
        assert logs[i] and all(ident == results[i] for ident, _ in logs[i])
