"""The device key in a PKCS #11 token (SoftHSM2) through the Python binding: provisioning with
the key generated in the token, renew and rekey, no key.pem on disk, the key sensitive and never
extractable (OpenSC's pkcs11-tool), and a wrong PIN refused as a client-side error. Needs a
library built with the cargo feature ``pkcs11`` (scripts/python-tests.sh builds it so), and
SoftHSM2 and pkcs11-tool (scripts/test.sh installs softhsm2 and opensc): without them these
tests fail."""

import os
import subprocess
from pathlib import Path

import pytest

from conftest import CSE_ID, openssl

from onem2m_est import BadArgumentsError, ClientSideError, Client, Config, Pkcs11Key, Result, SubjectType

PIN = "192837"
# No label is a prefix of another: pkcs11-tool --token-label matches prefixes.
TOKEN = "python-device"
MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")


@pytest.fixture(scope="module")
def token(tmp_path_factory):
    """A SoftHSM2 token initialised in a scratch folder, set in SOFTHSM2_CONF before the
    library first loads the module (SoftHSM2 reads it at C_Initialize)."""
    module = next((m for m in MODULES if Path(m).exists()), None)
    assert module, "SoftHSM2 is required (Debian package softhsm2)"
    d = tmp_path_factory.mktemp("softhsm")
    (d / "tokens").mkdir()
    conf = d / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {d / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label in (TOKEN, "py-wrong-pin"):
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label,
             "--so-pin", "56785678", "--pin", PIN],
            check=True, capture_output=True,
        )
    pin = d / "pin"
    pin.write_text(PIN + "\n")
    wrong = d / "wrong-pin"
    wrong.write_text("000000\n")
    return module, pin, wrong


def private_keys(module: str) -> list:
    out = subprocess.run(
        ["pkcs11-tool", "--module", module, "--token-label", TOKEN, "--login", "--pin", PIN,
         "--list-objects", "--type", "privkey"],
        check=True, capture_output=True, text=True,
    ).stdout
    return out.split("Private Key Object")[1:]


def config(mef, pki, store: Path, key: Pkcs11Key) -> Config:
    return Config(
        mef.url,
        trust_anchors_pem=mef.ca,
        client_cert_pem=pki.device_cert,
        client_key_pem=pki.device_key.read_bytes(),
        subject=(SubjectType.CSE, CSE_ID),
        store_dir=store,
        pkcs11_key=key,
        connect_timeout=10,
        response_timeout=30,
    )


def test_provision_renew_and_rekey_with_the_key_in_the_token(mef, pki, token, tmp_path):
    module, pin, _ = token
    store = tmp_path / "cred"
    key = Pkcs11Key(module, f"pkcs11:token={TOKEN};object=device", pin_file=pin)
    with Client(config(mef, pki, store, key)) as client:
        client.provision()
    assert (store / "cert.pem").exists() and not (store / "key.pem").exists()
    first = (store / "key.uri").read_text()
    assert first.startswith(f"pkcs11:token={TOKEN};object=device;id="), first
    keys = private_keys(module)
    assert len(keys) == 1 and "never extractable" in keys[0] and "sensitive" in keys[0], keys

    # Renew and rekey with the URI the store records, the PIN from the environment.
    os.environ["PY_TOKEN_PIN"] = PIN
    again = Pkcs11Key(module, pin_env="PY_TOKEN_PIN")
    cert = (store / "cert.pem").read_bytes()
    with Client(config(mef, pki, store, again)) as client:
        client.reprovision("renew")
        assert (store / "cert.pem").read_bytes() != cert
        assert (store / "key.uri").read_text() == first
        client.reprovision("rekey")
        # The MEF would make the key, outside the token: refused before any connection.
        with pytest.raises(BadArgumentsError) as e:
            client.reprovision("serverkeygen")
        assert e.value.result == Result.ERR_INVALID_ARGUMENT and "/serverkeygen" in str(e.value)
    assert (store / "key.uri").read_text() != first
    assert len(private_keys(module)) == 1, "the old key is destroyed"
    assert not any(p.name == "key.pem" for p in store.rglob("*"))
    # The certificate holds a key of the token: openssl reads its public key, not a file's.
    assert "PUBLIC KEY" in openssl("x509", "-in", str(store / "cert.pem"), "-noout", "-pubkey")


def test_a_wrong_pin_is_a_client_side_error(mef, pki, token, tmp_path):
    module, _, wrong = token
    key = Pkcs11Key(module, "pkcs11:token=py-wrong-pin;object=device", pin_file=wrong)
    with pytest.raises(ClientSideError) as e:
        Client(config(mef, pki, tmp_path / "cred", key))
    assert e.value.result == Result.ERR_KEY
    assert "000000" not in str(e.value)
    assert not (tmp_path / "cred").exists()
