"""Errors say why (issue #14): the library's reason reaches the exception, every failure is one
of the documented classes, enum-like arguments take their names, the library is found (bundled
first, ONEM2M_EST_LIB as a file or a folder) and its version is checked."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CSE_ID, openssl

import onem2m_est
from onem2m_est import BadArgumentsError, Client, Config, ClientSideError, SubjectType


def test_a_bad_base_uri_says_why(tmp_path):
    with pytest.raises(BadArgumentsError) as info:
        Client(Config("ftp://mef.example.com/.well-known/est", store_dir=tmp_path))
    message = info.value.message
    # The core's reason, not only "invalid argument".
    assert "EST base URI" in message and "ftp://" in message, message


def test_a_wildcard_subject_says_why(tmp_path):
    with pytest.raises(BadArgumentsError) as info:
        Client(
            Config(
                "https://mef.example.com/.well-known/est",
                subject=(SubjectType.CSE, "*.sp.example.com"),
                store_dir=tmp_path,
            )
        )
    assert "wildcard" in info.value.message, info.value.message


def test_cmd_status_names_are_the_librarys(tmp_path):
    # The status of a failure and its TS-0003 name come from the library (the core's
    # certprov::CmdStatus); the enum's numbers and names agree with it.
    lib = onem2m_est._load()
    for status in onem2m_est.CmdStatus:
        assert lib.mef_cmd_status_name(status).decode() == f"MEF_CLIENT_CMD_{status.name}"
    with pytest.raises(BadArgumentsError) as info:
        Client(Config("ftp://mef.example.com/.well-known/est", store_dir=tmp_path))
    assert info.value.cmd_status_name == "MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS"
    assert str(info.value).endswith("[ERR_INVALID_ARGUMENT, MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS]")


def test_zero_timeouts_and_attempts_are_refused_by_the_library(tmp_path):
    # One check for every language: the core's TransportConfig::with_timeouts/with_polling.
    for kwargs in ({"tls_timeout": 0}, {"max_poll_attempts": 0}):
        with pytest.raises(BadArgumentsError) as info:
            Client(Config("https://mef.example.com/.well-known/est", store_dir=tmp_path, **kwargs))
        assert "is 0" in info.value.message or "0 requests" in info.value.message, info.value


def test_client_new_failures_say_why(pki):
    with pytest.raises(BadArgumentsError) as info:
        Client(Config("https://mef.example.com/.well-known/est"))
    assert "no credential storage configured" in info.value.message, info.value.message


def test_an_rsa_key_is_blamed(pki, tmp_path):
    key = tmp_path / "rsa.key"
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", str(key))
    with pytest.raises(BadArgumentsError) as info:
        Client(
            Config(
                "https://mef.example.com/.well-known/est",
                client_cert_pem=pki.device_cert,
                client_key_pem=key,
                store_dir=tmp_path,
            )
        )
    message = info.value.message
    assert "client key" in message and "RSA key" in message, message
    assert "server" not in message, message
    for debug in ("Some(", "Ec(", "DNSName("):
        assert debug not in message


def test_a_missing_pem_file_is_a_bad_argument(tmp_path):
    with pytest.raises(BadArgumentsError) as info:
        Client(
            Config(
                "https://mef.example.com/.well-known/est",
                trust_anchors_pem=tmp_path / "no-such-ca.pem",
                store_dir=tmp_path,
            )
        )
    assert "trust_anchors_pem" in info.value.message and "no-such-ca.pem" in info.value.message


def test_a_wrong_python_type_is_a_bad_argument(tmp_path):
    with pytest.raises(BadArgumentsError):
        Client(Config(b"https://mef.example.com/.well-known/est", store_dir=tmp_path))
    with pytest.raises(BadArgumentsError):
        Client(Config("https://mef.example.com/.well-known/est", trust_anchors_pem=3))


def test_enum_like_arguments_take_their_names(pki, tmp_path):
    # Names in any case build the same configuration as the members.
    with Client(
        Config(
            "https://mef.example.com/.well-known/est",
            subject=("cse", CSE_ID),
            key_type="ecdsa_p256_sha256",
            log=lambda level, message: None,
            log_level="debug",
            store_dir=tmp_path,
        )
    ):
        pass
    with pytest.raises(BadArgumentsError) as info:
        Client(Config("https://x.example.com/.well-known/est", subject=("gateway", CSE_ID)))
    assert "'cse'" in info.value.message, info.value.message


def test_reprovision_mode_names(mef, pki, tmp_path):
    with Client(Config(mef.url, store_dir=tmp_path / "empty")) as client:
        for mode in ("renew", "REKEY", "server_keygen", "serverkeygen"):
            # Not provisioned: a client-side error, i.e. the mode name was accepted.
            with pytest.raises(ClientSideError):
                client.reprovision(mode)
        with pytest.raises(BadArgumentsError):
            client.reprovision("refresh")


def run_python(code, **env):
    full = dict(os.environ)
    # The onem2m_est under test, wherever it was imported from (source tree or a wheel).
    package_root = str(Path(onem2m_est.__file__).resolve().parent.parent)
    full["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, full.get("PYTHONPATH")) if p)
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60
    )


def test_onem2m_est_lib_may_name_the_folder():
    lib = Path(onem2m_est.library_path())
    code = "import onem2m_est; print(onem2m_est.library_path(), onem2m_est.version())"
    result = run_python(code, ONEM2M_EST_LIB=str(lib.parent))
    assert result.returncode == 0, result.stderr
    assert str(lib.parent) in result.stdout
    assert onem2m_est.__version__ in result.stdout


def test_a_missing_library_is_a_library_error(tmp_path):
    code = (
        "import onem2m_est\n"
        "try:\n"
        "    onem2m_est.version()\n"
        "except onem2m_est.LibraryError as e:\n"
        "    assert isinstance(e, onem2m_est.ClientSideError) and isinstance(e, OSError)\n"
        "    print('LibraryError:', e)\n"
    )
    result = run_python(code, ONEM2M_EST_LIB=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "LibraryError: cannot load libonem2m_est" in result.stdout


def test_the_library_version_is_the_package_version():
    assert onem2m_est.version() == onem2m_est.__version__


def test_a_library_of_another_version_is_refused():
    code = (
        "import onem2m_est\n"
        "onem2m_est.__version__ = '9.9.9'\n"
        "try:\n"
        "    onem2m_est.version()\n"
        "except onem2m_est.LibraryError as e:\n"
        "    print('refused:', e)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "this package is 9.9.9" in result.stdout, result.stdout


@pytest.mark.skipif(
    not os.environ.get("ONEM2M_EST_INSTALLED"), reason="checks an installed wheel only"
)
def test_an_installed_wheel_uses_its_bundled_library():
    # scripts/python-tests.sh runs the suite a second time from the wheel, without
    # ONEM2M_EST_LIB: the library must be the one inside the package.
    assert "ONEM2M_EST_LIB" not in os.environ
    package = Path(onem2m_est.__file__).resolve().parent
    assert Path(onem2m_est.library_path()).resolve().parent == package


def test_bounds_not_given_keep_the_librarys_values(tmp_path):
    # The binding sets the three timeouts (and the two polling bounds) in one call; the ones not
    # given are read from the library's configuration (mef_config_get_timeouts/_polling), not
    # from a copy of its defaults here, so every language has the library's defaults.
    import ctypes

    lib = onem2m_est._load()
    client = Client.__new__(Client)
    client._lib = lib
    client._log_cb = None
    built = client._build_config(
        Config(
            "https://mef.example.com/.well-known/est",
            store_dir=tmp_path,
            connect_timeout=2,
            max_poll_time=5,
        )
    )
    fresh = ctypes.c_void_p()
    assert lib.mef_config_new(ctypes.byref(fresh)) == 0

    def bounds(c):
        t = [ctypes.c_uint32() for _ in range(5)]
        assert lib.mef_config_get_timeouts(c, *(ctypes.byref(v) for v in t[:3])) == 0
        assert lib.mef_config_get_polling(c, ctypes.byref(t[3]), ctypes.byref(t[4])) == 0
        return [v.value for v in t]

    try:
        got, defaults = bounds(built), bounds(fresh)
    finally:
        lib.mef_config_free(built)
        lib.mef_config_free(fresh)
    # connect 2 s and 5 s of polling as given; TLS, response and attempts the library's.
    assert got == [2000, defaults[1], defaults[2], defaults[3], 5000], (got, defaults)
    assert defaults[1] != 2000 and defaults[4] != 5000, defaults
