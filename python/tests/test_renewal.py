"""Renewal through the Python binding against the reference MEF (issue #12): the renewal time
of the installed certificate, the policy, renewal by re-provisioning, re-bootstrap with the
third-party certificate once the certificate has expired (``now`` passed in: the clock seam),
and the failure kind and retry time of an unreachable MEF."""

import time

import pytest

from conftest import CSE_ID, REPO, openssl

from onem2m_est import (
    BadArgumentsError,
    Client,
    ClientSideError,
    Config,
    FailureKind,
    RenewalPath,
    Result,
    ServerSideError,
    SubjectType,
)


def config(mef, pki, store_dir, url=None, bootstrap=True) -> Config:
    args = dict(
        trust_anchors_pem=mef.ca,
        subject=(SubjectType.CSE, CSE_ID),
        store_dir=store_dir,
        connect_timeout=10,
        response_timeout=30,
    )
    if bootstrap:
        args.update(client_cert_pem=pki.device_cert, client_key_pem=pki.device_key.read_bytes())
    return Config(url or mef.url, **args)


def serial(store) -> str:
    return openssl("x509", "-in", str(store / "cert.pem"), "-noout", "-serial")


def test_renewal_time_policy_and_reprovisioning(mef, pki, tmp_path):
    store = tmp_path / "store"
    with Client(config(mef, pki, store)) as c:
        with pytest.raises(ClientSideError) as e:
            c.next_renewal()
        assert e.value.result == Result.ERR_NOT_PROVISIONED
        c.provision()
        now = int(time.time())
        at = c.next_renewal()
        # The MEF issues for a year: due after about two thirds (jitter at most a tenth).
        assert now + 200 * 86400 < at < now + 245 * 86400
        assert c.next_renewal() == at
        assert not c.renewal_due()
        assert not c.renewal_due(at - 1)
        assert c.renewal_due(at)

        c.set_renewal_policy(fraction=1.0, jitter=0.0)
        not_after = c.next_renewal()
        c.set_renewal_policy(margin=86400, jitter=0.0)
        assert c.next_renewal() == not_after - 86400
        for bad in (dict(fraction=0.0), dict(fraction=1.5), dict(jitter=1.0), dict(margin=-5)):
            with pytest.raises(BadArgumentsError):
                c.set_renewal_policy(**bad)

        before = serial(store)
        assert c.renew() == RenewalPath.REPROVISIONED
        assert c.last_failure_kind == FailureKind.NONE
        assert serial(store) != before


def test_expired_certificate_rebootstraps(mef, pki, tmp_path):
    store = tmp_path / "store"
    with Client(config(mef, pki, store)) as c:
        c.provision()
        c.set_renewal_policy(fraction=1.0, jitter=0.0)
        not_after = c.next_renewal()
        before = serial(store)
        assert c.renew(now=not_after + 1) == RenewalPath.REBOOTSTRAPPED
        assert serial(store) != before
        not_after = c.next_renewal()
    # Without the third-party certificate there is nothing to re-bootstrap with.
    with Client(config(mef, pki, store, bootstrap=False)) as c:
        c.set_renewal_policy(fraction=1.0, jitter=0.0)
        with pytest.raises(ClientSideError) as e:
            c.renew(now=not_after + 1)
        assert e.value.result == Result.ERR_NOT_PROVISIONED
        assert "no bootstrap credential" in e.value.message
        assert c.last_failure_kind == FailureKind.FATAL


def test_unreachable_mef_is_retryable_with_bounded_backoff(mef, pki, tmp_path):
    store = tmp_path / "store"
    with Client(config(mef, pki, store)) as c:
        c.provision()
    with Client(config(mef, pki, store, url="https://localhost:1/.well-known/est")) as c:
        with pytest.raises(ServerSideError) as e:
            c.renew()
        assert e.value.result == Result.ERR_CONNECT
        assert c.last_failure_kind == FailureKind.RETRYABLE
        now = int(time.time())
        assert now + 30 <= c.next_retry(1, now) <= now + 60
        assert now + 480 <= c.next_retry(5, now) <= now + 960
        c.set_renewal_policy(fraction=1.0, jitter=0.0)
        not_after = c.next_renewal()
        assert not_after - 100 < c.next_retry(20, not_after - 100) <= not_after - 50
        with pytest.raises(BadArgumentsError):
            c.next_retry(0)


def test_the_scheduler_snippet_of_docs_python_md(mef, pki, tmp_path):
    """The "Renewal" snippet of docs/PYTHON.md, run as written."""
    doc = (REPO / "docs" / "PYTHON.md").read_text()
    section = doc[doc.index("## Renewal") :]
    code = section[section.index("```python\n") + len("```python\n") :]
    code = code[: code.index("```")]
    reloads = []
    namespace = {"reload_tls_credentials": lambda rebootstrapped: reloads.append(rebootstrapped)}
    exec(compile(code, "docs/PYTHON.md", "exec"), namespace)
    tick = namespace["renewal_tick"]

    store = tmp_path / "store"
    with Client(config(mef, pki, store)) as c:
        c.provision()
        state = {"failures": 0, "retry_at": 0}
        tick(c, state)  # not due: nothing happens
        assert reloads == [] and state == {"failures": 0, "retry_at": 0}
        c.set_renewal_policy(margin=400 * 86400, jitter=0.0)
        tick(c, state)  # due: renewed, the CSE reloads
        assert reloads == [False] and state == {"failures": 0, "retry_at": 0}
    with Client(config(mef, pki, store, url="https://localhost:1/.well-known/est")) as c:
        c.set_renewal_policy(margin=400 * 86400, jitter=0.0)
        tick(c, state)  # unreachable MEF: a retry is scheduled
        assert state["failures"] == 1 and state["retry_at"] > time.time()
        tick(c, state)  # before the retry time: nothing
        assert state["failures"] == 1 and reloads == [False]
