"""Quick start of the Python binding (the README's example, runnable).

    python3 quickstart.py URL MEF_CA_PEM DEVICE_CERT_PEM DEVICE_KEY_PEM OUT_DIR

Initial Certificate Provisioning with a third-party (manufacturer) client certificate, then a
rekeying Re-Provisioning; the credentials end up in OUT_DIR/cert.pem, key.pem (0600) and
trust-anchors.pem. Exit code 1 on failure, with the CERT_PROV class of the error.
"""

import sys
from pathlib import Path

from onem2m_est import Client, Config, EstError, SubjectType


def main(url: str, mef_ca: str, cert: str, key: str, out_dir: str) -> int:
    config = Config(
        url,
        trust_anchors_pem=Path(mef_ca),  # the EST client's explicit trust anchor database
        client_cert_pem=Path(cert),  # third-party client certificate (certificate-based RSPF)
        client_key_pem=Path(key),
        subject=(SubjectType.CSE, "cse01.sp.example.com"),
        store_dir=out_dir,
        log=lambda level, message: print(f"[{level.name}] {message}", file=sys.stderr),
    )
    try:
        with Client(config) as client:
            client.provision()  # TS-0003 8.3.6.2.2
            print(f"provisioned into {out_dir}")
            client.reprovision("rekey")  # TS-0003 8.3.6.2.3, new key
            print("re-provisioned with a new key")
    except EstError as e:
        # e.cmd_status: the CERT_PROV cmdStatusCode class (TS-0003 8.3.9.7)
        print(f"failed ({type(e).__name__}, {e.cmd_status.name}): {e.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
