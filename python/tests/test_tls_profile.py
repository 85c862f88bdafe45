"""The TS-0003 TLS profile (``Config(tls_profile="ts0003")``: TLS 1.2, ECDHE-ECDSA suites with
the mandatory TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 of TS-0003 10.2.3) through the Python
binding, against ``openssl s_server`` restricted to that one suite with a client certificate
required, on 127.0.0.1. Needs the openssl CLI and a library built with the ``psk`` feature
(scripts/python-tests.sh builds it so)."""

import subprocess

import pytest

from conftest import make_ca, openssl

from onem2m_est import BadArgumentsError, Client, Config, ServerSideError

SERVER_EXT = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
"""


@pytest.fixture
def s_server(pki, tmp_path):
    """s_server -www, TLS 1.2, ECDHE-ECDSA-AES128-SHA256 only, manufacturer client certificate
    required; yields (url, MEF CA path)."""
    ca = make_ca(tmp_path / "mefca", "mef-ca")
    key, csr, cert = tmp_path / "server.key", tmp_path / "server.csr", tmp_path / "server.pem"
    (tmp_path / "server.ext").write_text(SERVER_EXT)
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    openssl("req", "-new", "-key", str(key), "-subj", "/CN=localhost", "-out", str(csr))
    openssl(
        *("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key)),
        *("-CAcreateserial", "-sha256", "-days", "1"),
        *("-extfile", str(tmp_path / "server.ext"), "-out", str(cert)),
    )
    proc = subprocess.Popen(
        [
            *("openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "4", "-tls1_2"),
            *("-cipher", "ECDHE-ECDSA-AES128-SHA256", "-Verify", "2", "-verify_return_error"),
            *("-cert", str(cert), "-key", str(key), "-CAfile", str(pki.manufacturer_ca), "-www"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = None
        for line in proc.stdout:
            if line.startswith("ACCEPT "):
                port = int(line.strip().rsplit(":", 1)[1])
                break
        assert port, "s_server printed its address"
        yield f"https://localhost:{port}/.well-known/est", ca.cert
    finally:
        proc.kill()
        proc.wait()


def profile_config(url, ca, pki, store, **kw) -> Config:
    return Config(
        url,
        store_dir=store,
        trust_anchors_pem=ca,
        client_cert_pem=pki.device_cert,
        client_key_pem=pki.device_key,
        connect_timeout=5,
        tls_timeout=5,
        response_timeout=5,
        **kw,
    )


def test_ts0003_profile_handshakes_on_the_mandatory_suite(s_server, pki, tmp_path):
    url, ca = s_server
    with Client(profile_config(url, ca, pki, tmp_path, tls_profile="ts0003")) as client:
        # s_server -www answers with an HTML page: the handshake (with our client
        # certificate) completed, the failure is about the response.
        with pytest.raises(ServerSideError) as info:
            client.cacerts()
    assert "Content-Type" in info.value.message, info.value


def test_the_modern_profile_finds_no_common_suite(s_server, pki, tmp_path):
    url, ca = s_server
    with Client(profile_config(url, ca, pki, tmp_path)) as client:
        with pytest.raises(ServerSideError) as info:
            client.cacerts()
    assert "no TLS version or cipher suite in common" in info.value.message, info.value


def test_an_unknown_profile_is_refused(pki, tmp_path):
    with pytest.raises(BadArgumentsError):
        Client(
            profile_config(
                "https://localhost:1/.well-known/est",
                pki.manufacturer_ca,
                pki,
                tmp_path,
                tls_profile="tls13",
            )
        )
