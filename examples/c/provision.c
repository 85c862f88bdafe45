/*
 * provision.c: quick start of the onem2m-est C API.
 *
 * Initial Certificate Provisioning (TS-0003 8.3.6.2.2) with a third-party client certificate
 * (certificate-based RSPF), then a rekeying Certificate Re-Provisioning (8.3.6.2.3), with the
 * credentials kept by the library's built-in file store (OUT_DIR/cert.pem, key.pem (0600),
 * trust-anchors.pem).
 *
 *   provision URL CA_PEM CERT_PEM KEY_PEM OUT_DIR [CSE_ID]
 *
 *   URL      EST base URI of the MEF, e.g. https://mef.example.com/.well-known/est
 *   CA_PEM   the MEF's trust anchor(s): the EST client's explicit trust anchor database
 *   CERT_PEM third-party client certificate chain (leaf first), e.g. from the manufacturer
 *   KEY_PEM  its private key (PKCS #8 or SEC1 PEM)
 *   OUT_DIR  where the provisioned credentials are installed
 *   CSE_ID   the CSE-ID to provision (default cse01.sp.example.com)
 *
 * Build: cc provision.c $(pkg-config --cflags --libs onem2m_est) -o provision
 * Exit code 0 only if both procedures succeeded.
 */
#include <onem2m_est.h>

#include <stdio.h>
#include <stdlib.h>

#include "common.h" /* read_file, free_secret, report */

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s URL CA_PEM CERT_PEM KEY_PEM OUT_DIR [CSE_ID]\n", argv[0]);
        return 2;
    }
    const char *url = argv[1], *out_dir = argv[5];
    const char *cse_id = argc == 7 ? argv[6] : "cse01.sp.example.com";

    int status = 1;
    uint8_t *ta = NULL, *cert = NULL, *key = NULL;
    size_t ta_len = 0, cert_len = 0, key_len = 0;
    mef_config *config = NULL;
    mef_client *client = NULL;
    mef_result r;

    printf("onem2m-est %s\n", mef_version());
    if (read_file(argv[2], &ta, &ta_len) || read_file(argv[3], &cert, &cert_len) ||
        read_file(argv[4], &key, &key_len))
        goto out;

    /* The configuration: every setter validates its argument at once. */
    if ((r = mef_config_new(&config)) != MEF_OK) {
        report("mef_config_new", r, NULL);
        goto out;
    }
    if ((r = mef_config_set_base_uri(config, url)) != MEF_OK ||
        (r = mef_config_set_trust_anchors_pem(config, ta, ta_len)) != MEF_OK ||
        (r = mef_config_set_client_cert_pem(config, cert, cert_len, key, key_len)) != MEF_OK ||
        (r = mef_config_set_subject(config, MEF_SUBJECT_CSE, cse_id)) != MEF_OK ||
        (r = mef_config_set_timeouts(config, 10000, 10000, 30000)) != MEF_OK ||
        (r = mef_config_set_store_dir(config, out_dir)) != MEF_OK) {
        report("configuration", r, NULL);
        goto out;
    }
    /* The configuration holds its own copy of the key: wipe ours now. */
    free_secret(key, key_len);
    key = NULL;

    if ((r = mef_client_new(config, &client)) != MEF_OK) {
        report("mef_client_new", r, NULL);
        goto out;
    }
    /* The client copied what it needs. */
    mef_config_free(config);
    config = NULL;

    /* Initial Certificate Provisioning: /cacerts, /csrattrs, new key, CSR, /simpleenroll,
     * validation, atomic install into OUT_DIR. */
    if ((r = mef_client_provision(client, MEF_KEY_GENERATE)) != MEF_OK) {
        report("provisioning", r, client);
        goto out;
    }
    printf("provisioned %s into %s/cert.pem, key.pem, trust-anchors.pem (%u TLS handshake(s))\n",
           cse_id, out_dir, mef_client_last_handshakes(client));

    /* Certificate Re-Provisioning with a new key: TLS authenticated with the certificate just
     * installed, /simplereenroll; OUT_DIR is replaced only on success. */
    if ((r = mef_client_reprovision(client, MEF_REPROVISION_REKEY)) != MEF_OK) {
        report("re-provisioning", r, client);
        goto out;
    }
    printf("re-provisioned with a new key (%u TLS handshake(s))\n",
           mef_client_last_handshakes(client));
    status = 0;

out:
    mef_client_free(client);
    mef_config_free(config);
    free_secret(key, key_len);
    free(cert);
    free(ta);
    return status;
}
