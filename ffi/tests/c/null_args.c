/*
 * Every exported function of onem2m_est.h called with NULL and bad arguments: each must return
 * its documented result (never crash, never write an out-parameter on failure); then a full
 * configuration/client lifecycle with every object freed (run under valgrind by run.sh).
 *
 * usage: null_args TRUST_ANCHORS.pem DEVICE_CERT.pem DEVICE_KEY.pem STORE_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* Callbacks that are never reached in this test (no procedure runs against a MEF). */
static int cb_generate(void *u, mef_key_type t, uint64_t *h) { (void)u; (void)t; (void)h; return 99; }
static int cb_current(void *u, uint64_t *h, mef_key_type *t) { (void)u; (void)h; (void)t; return MEF_CB_NOT_FOUND; }
static int cb_public_key(void *u, uint64_t h, uint8_t *o, size_t c, size_t *l) { (void)u; (void)h; (void)o; (void)c; (void)l; return 99; }
static int cb_sign(void *u, uint64_t h, const uint8_t *m, size_t ml, uint8_t *o, size_t c, size_t *l) {
  (void)u; (void)h; (void)m; (void)ml; (void)o; (void)c; (void)l; return 99;
}
static int cb_commit(void *u, uint64_t h) { (void)u; (void)h; return MEF_CB_OK; }
static int cb_discard(void *u, uint64_t h) { (void)u; (void)h; return MEF_CB_OK; }
static int cb_store(void *u, const uint8_t *c, size_t cl, const uint8_t *t, size_t tl, uint64_t h,
                    const uint8_t *k, size_t kl) {
  (void)u; (void)c; (void)cl; (void)t; (void)tl; (void)h; (void)k; (void)kl; return 99;
}
static int cb_load(void *u, mef_credentials_sink *s) { (void)u; (void)s; return MEF_CB_NOT_FOUND; }
static int cb_identity(void *u, mef_identity_sink *s) { (void)u; (void)s; return MEF_CB_OK; }
static int log_lines = 0;

/* The timeouts and polling bounds `cfg` holds, read back with the getters; a failure names
   `when`. */
static void expect_bounds(const char *when, const mef_config *cfg, uint32_t connect_ms,
                          uint32_t tls_ms, uint32_t response_ms, uint32_t attempts,
                          uint32_t total_ms) {
  int before = failures;
  uint32_t c = 0, t = 0, r = 0, a = 0, p = 0;
  EXPECT(mef_config_get_timeouts(cfg, &c, &t, &r), MEF_OK);
  TRUE(c == connect_ms && t == tls_ms && r == response_ms);
  EXPECT(mef_config_get_polling(cfg, &a, &p), MEF_OK);
  TRUE(a == attempts && p == total_ms);
  if (failures != before) fprintf(stderr, "  (bounds %s)\n", when);
}
static void cb_log(void *u, mef_log_level l, const char *m) {
  (void)l;
  TRUE(u == (void *)&log_lines);
  TRUE(m != NULL && strlen(m) > 0);
  log_lines++;
}

static const mef_key_callbacks key_cbs = {sizeof(mef_key_callbacks), cb_generate, cb_current, cb_public_key, cb_sign, cb_commit, cb_discard};
static const mef_credential_callbacks cred_cbs = {sizeof(mef_credential_callbacks), cb_store, cb_load};

static void free_functions_accept_null(void) {
  mef_config_free(NULL);
  mef_client_free(NULL);
  mef_buffer_free(NULL);
}

static void static_functions(void) {
  TRUE(strcmp(mef_version(), MEF_VERSION_STRING) == 0);
  TRUE(strcmp(mef_result_text(MEF_OK), "success") == 0);
  TRUE(strcmp(mef_result_text(MEF_ERR_NULL_ARGUMENT), "unknown result") != 0);
  TRUE(strcmp(mef_result_text(MEF_ERR_NOT_PROVISIONED), "unknown result") != 0);
  TRUE(strcmp(mef_result_text(5), "unknown result") == 0);
  TRUE(strcmp(mef_result_text(MEF_ERR_RETRY_LATER), "unknown result") != 0);
  TRUE(strcmp(mef_result_text(23), "unknown result") == 0);
  TRUE(strcmp(mef_result_text(36), "unknown result") == 0);
  TRUE(strcmp(mef_result_text(0xFFFFFFFFu), "unknown result") == 0);
  TRUE(mef_result_cmd_status(MEF_OK) == MEF_CMD_OK);
  TRUE(mef_result_cmd_status(MEF_ERR_NULL_ARGUMENT) == MEF_CMD_UNACCEPTABLE_ARGUMENTS);
  TRUE(mef_result_cmd_status(MEF_ERR_INVALID_ARGUMENT) == MEF_CMD_UNACCEPTABLE_ARGUMENTS);
  TRUE(mef_result_cmd_status(MEF_ERR_PANIC) == MEF_CMD_CERT_PROV_CLIENT_ERROR);
  TRUE(mef_result_cmd_status(MEF_ERR_CALLBACK) == MEF_CMD_CERT_PROV_CLIENT_ERROR);
  TRUE(mef_result_cmd_status(MEF_ERR_CONNECT) == MEF_CMD_CERT_PROV_SERVER_ERROR);
  TRUE(mef_result_cmd_status(MEF_ERR_CERTIFICATE_REJECTED) == MEF_CMD_CERT_PROV_SERVER_ERROR);
  TRUE(mef_result_cmd_status(MEF_ERR_DECODE) == MEF_CMD_CERT_PROV_SERVER_ERROR);
  TRUE(mef_result_cmd_status(MEF_ERR_RETRY_LATER) == MEF_CMD_CERT_PROV_SERVER_ERROR);
  TRUE(mef_result_cmd_status(MEF_ERR_STORE) == MEF_CMD_CERT_PROV_CLIENT_ERROR);
  TRUE(mef_result_cmd_status(12345) == MEF_CMD_CERT_PROV_CLIENT_ERROR);
  TRUE(strcmp(mef_cmd_status_name(MEF_CMD_OK), "MEF_CLIENT_CMD_OK") == 0);
  TRUE(strcmp(mef_cmd_status_name(MEF_CMD_UNACCEPTABLE_ARGUMENTS), "MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS") == 0);
  TRUE(strcmp(mef_cmd_status_name(MEF_CMD_CERT_PROV_SERVER_ERROR), "MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR") == 0);
  TRUE(strcmp(mef_cmd_status_name(MEF_CMD_CERT_PROV_CLIENT_ERROR), "MEF_CLIENT_CMD_CERT_PROV_CLIENT_ERROR") == 0);
  TRUE(strcmp(mef_cmd_status_name(4), "unknown status") == 0);
}

static void null_handles(const char *pem, size_t pem_len) {
  const uint8_t *p = (const uint8_t *)pem;
  EXPECT(mef_config_new(NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_base_uri(NULL, "https://localhost/.well-known/est"), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_trust_anchors_pem(NULL, p, pem_len), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_client_cert_pem(NULL, p, pem_len, p, pem_len), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_client_cert_key_handle(NULL, p, pem_len, 7, MEF_KEY_ECDSA_P256_SHA256), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_subject(NULL, MEF_SUBJECT_CSE, "cse01.example.com"), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_mef_fqdn(NULL, "mef.example.com"), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_psk_base_uri(NULL, "https://mef.example.com:8444/.well-known/est"),
         MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_sp_id(NULL, "//example.net"), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_key_type(NULL, MEF_KEY_ED25519), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_tls_profile(NULL, MEF_TLS_PROFILE_TS0003), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_timeouts(NULL, 1, 1, 1), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_polling(NULL, 1, 1), MEF_ERR_NULL_ARGUMENT);
  {
    uint32_t t1 = 7, t2 = 7, t3 = 7;
    EXPECT(mef_config_get_timeouts(NULL, &t1, &t2, &t3), MEF_ERR_NULL_ARGUMENT);
    EXPECT(mef_config_get_polling(NULL, &t1, &t2), MEF_ERR_NULL_ARGUMENT);
    TRUE(t1 == 7 && t2 == 7 && t3 == 7); /* outputs written only on success */
  }
  EXPECT(mef_config_set_store_dir(NULL, "/tmp/x"), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_pkcs11_key(NULL, "/m.so", NULL, "/pin", NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_key_callbacks(NULL, &key_cbs, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_credential_callbacks(NULL, &cred_cbs, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_identity_callback(NULL, cb_identity, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_log_callback(NULL, cb_log, NULL, MEF_LOG_INFO), MEF_ERR_NULL_ARGUMENT);

  mef_client *client = (mef_client *)0x1; /* must stay untouched */
  EXPECT(mef_client_new(NULL, &client), MEF_ERR_NULL_ARGUMENT);
  TRUE(client == (mef_client *)0x1);
  EXPECT(mef_client_provision(NULL, MEF_KEY_GENERATE), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_client_reprovision(NULL, MEF_REPROVISION_RENEW), MEF_ERR_NULL_ARGUMENT);
  mef_buffer *buf = (mef_buffer *)0x1;
  EXPECT(mef_client_cacerts(NULL, &buf), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_client_csrattrs(NULL, &buf), MEF_ERR_NULL_ARGUMENT);
  TRUE(buf == (mef_buffer *)0x1);
  TRUE(mef_client_last_error(NULL) != NULL && mef_client_last_error(NULL)[0] == '\0');
  TRUE(mef_client_last_handshakes(NULL) == 0);
  TRUE(mef_buffer_data(NULL) == NULL);
  TRUE(mef_buffer_len(NULL) == 0);
  EXPECT(mef_credentials_set(NULL, p, pem_len, p, pem_len), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_identity_set_subject(NULL, MEF_SUBJECT_CSE, "cse01.example.com"), MEF_ERR_NULL_ARGUMENT);
  static const uint8_t kpm[32] = {1};
  EXPECT(mef_config_set_psk(NULL, "kpm-0001", kpm, sizeof kpm), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_identity_set_psk(NULL, "kpm-0001", kpm, sizeof kpm), MEF_ERR_NULL_ARGUMENT);
}

static void bad_config_arguments(const char *ta, size_t ta_len, const char *cert, size_t cert_len,
                                 const char *key, size_t key_len) {
  const uint8_t *t = (const uint8_t *)ta, *c = (const uint8_t *)cert, *k = (const uint8_t *)key;
  static const char garbage[] = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
  static const char not_pem[] = "hello";
  static const char bad_utf8[] = {'h', (char)0xC3, (char)0x28, 'x', '\0'};
  static const uint8_t bad_utf8_pem[] = {0xFF, 0xFE, 0x2D, 0x2D};
  mef_config *cfg = NULL;
  EXPECT(mef_config_new(&cfg), MEF_OK);
  TRUE(cfg != NULL);
  if (!cfg) return;

  /* The library's defaults, read back; a NULL output is refused and writes nothing. */
  uint32_t connect_ms = 0, tls_ms = 0, total_ms = 0;
  EXPECT(mef_config_get_timeouts(cfg, &connect_ms, &tls_ms, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_get_polling(cfg, NULL, &total_ms), MEF_ERR_NULL_ARGUMENT);
  TRUE(connect_ms == 0 && tls_ms == 0 && total_ms == 0);
  expect_bounds("of a new configuration", cfg, 10000, 15000, 60000, 10, 600000);

  /* NULL arguments beside a valid handle. */
  EXPECT(mef_config_set_base_uri(cfg, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_trust_anchors_pem(cfg, NULL, ta_len), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_client_cert_pem(cfg, NULL, cert_len, k, key_len), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_client_cert_pem(cfg, c, cert_len, NULL, key_len), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_client_cert_key_handle(cfg, NULL, cert_len, 7, MEF_KEY_ECDSA_P256_SHA256), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_CSE, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_mef_fqdn(cfg, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_psk_base_uri(cfg, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_sp_id(cfg, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_store_dir(cfg, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_pkcs11_key(cfg, NULL, NULL, "/pin", NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_key_callbacks(cfg, NULL, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_credential_callbacks(cfg, NULL, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_identity_callback(cfg, NULL, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_log_callback(cfg, NULL, NULL, MEF_LOG_INFO), MEF_ERR_NULL_ARGUMENT);
  static const uint8_t kpm[65] = {1};
  EXPECT(mef_config_set_psk(cfg, NULL, kpm, 32), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_config_set_psk(cfg, "kpm-0001", NULL, 32), MEF_ERR_NULL_ARGUMENT);
  /* A KpmID that is empty, not UTF-8 or holds control characters; a Kpm outside 16..64 bytes
     (RFC 4279 5.3, 7.2). */
  EXPECT(mef_config_set_psk(cfg, "", kpm, 32), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_psk(cfg, bad_utf8, kpm, 32), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_psk(cfg, "kpm\n0001", kpm, 32), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_psk(cfg, "kpm-0001", kpm, 15), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_psk(cfg, "kpm-0001", kpm, 65), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_psk(cfg, "kpm-0001", kpm, 0), MEF_ERR_INVALID_ARGUMENT);

  /* The reason reaches the C caller (mef_config_last_error), in words (issue #14). */
  TRUE(strstr(mef_config_last_error(cfg), "16") != NULL);
  EXPECT(mef_config_set_base_uri(cfg, "http://mef.example.com/.well-known/est"), MEF_ERR_INVALID_ARGUMENT);
  TRUE(strstr(mef_config_last_error(cfg), "EST base URI") != NULL);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_CSE, "*.sp.example.com"), MEF_ERR_INVALID_ARGUMENT);
  TRUE(strstr(mef_config_last_error(cfg), "wildcard") != NULL);
  EXPECT(mef_config_set_trust_anchors_pem(cfg, (const uint8_t *)not_pem, strlen(not_pem)), MEF_ERR_INVALID_ARGUMENT);
  TRUE(strncmp(mef_config_last_error(cfg), "trust anchors: ", 15) == 0);
  EXPECT(mef_config_set_sp_id(cfg, NULL), MEF_ERR_NULL_ARGUMENT);
  TRUE(strcmp(mef_config_last_error(cfg), "sp_id is NULL") == 0);
  TRUE(mef_config_last_error(NULL) != NULL && mef_config_last_error(NULL)[0] == '\0');

  /* mef_csrattrs_describe: NULL out, malformed DER, no attributes. */
  {
    static const uint8_t junk[] = {0x30, 0x05, 0x01};
    mef_buffer *text = NULL;
    EXPECT(mef_csrattrs_describe(junk, sizeof junk, NULL), MEF_ERR_NULL_ARGUMENT);
    EXPECT(mef_csrattrs_describe(junk, sizeof junk, &text), MEF_ERR_DECODE);
    TRUE(text == NULL);
    EXPECT(mef_csrattrs_describe(junk, 0, &text), MEF_OK);
    TRUE(text != NULL && mef_buffer_len(text) == 0);
    mef_buffer_free(text);
  }

  /* Callback structs with a NULL member, each member in turn. */
  for (int i = 0; i < 6; i++) {
    mef_key_callbacks kc = key_cbs;
    switch (i) {
      case 0: kc.generate = NULL; break;
      case 1: kc.current = NULL; break;
      case 2: kc.public_key = NULL; break;
      case 3: kc.sign = NULL; break;
      case 4: kc.commit = NULL; break;
      default: kc.discard = NULL; break;
    }
    EXPECT(mef_config_set_key_callbacks(cfg, &kc, NULL), MEF_ERR_NULL_ARGUMENT);
  }
  for (int i = 0; i < 2; i++) {
    mef_credential_callbacks cc = cred_cbs;
    if (i == 0) cc.store = NULL; else cc.load = NULL;
    EXPECT(mef_config_set_credential_callbacks(cfg, &cc, NULL), MEF_ERR_NULL_ARGUMENT);
  }
  /* A struct_size that is not this library's sizeof (an older or newer header) is refused,
     with the reason in mef_config_last_error. */
  {
    mef_key_callbacks kc = key_cbs;
    kc.struct_size = sizeof(mef_key_callbacks) - sizeof(void *);
    EXPECT(mef_config_set_key_callbacks(cfg, &kc, NULL), MEF_ERR_INVALID_ARGUMENT);
    TRUE(strstr(mef_config_last_error(cfg), "struct_size") != NULL);
    mef_credential_callbacks cc = cred_cbs;
    cc.struct_size = 0;
    EXPECT(mef_config_set_credential_callbacks(cfg, &cc, NULL), MEF_ERR_INVALID_ARGUMENT);
    TRUE(strstr(mef_config_last_error(cfg), "struct_size") != NULL);
  }

  /* Invalid values. */
  EXPECT(mef_config_set_base_uri(cfg, "not a uri"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_base_uri(cfg, "http://localhost/.well-known/est"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_base_uri(cfg, ""), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_base_uri(cfg, bad_utf8), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_trust_anchors_pem(cfg, t, 0), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_trust_anchors_pem(cfg, (const uint8_t *)garbage, sizeof garbage - 1), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_trust_anchors_pem(cfg, (const uint8_t *)not_pem, sizeof not_pem - 1), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_trust_anchors_pem(cfg, bad_utf8_pem, sizeof bad_utf8_pem), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_trust_anchors_pem(cfg, t, ta_len / 2), MEF_ERR_INVALID_ARGUMENT); /* truncated */
  EXPECT(mef_config_set_client_cert_pem(cfg, c, cert_len, k, 0), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_client_cert_pem(cfg, c, 0, k, key_len), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_client_cert_pem(cfg, c, cert_len, (const uint8_t *)garbage, sizeof garbage - 1), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_client_cert_pem(cfg, c, cert_len, bad_utf8_pem, sizeof bad_utf8_pem), MEF_ERR_INVALID_ARGUMENT);
  /* A key that is not the certificate's: the trust anchor's certificate with the device key. */
  EXPECT(mef_config_set_client_cert_pem(cfg, t, ta_len, k, key_len), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_client_cert_key_handle(cfg, c, cert_len, 7, 0), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_client_cert_key_handle(cfg, c, cert_len, 7, 4), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_client_cert_key_handle(cfg, c, 0, 7, MEF_KEY_ECDSA_P256_SHA256), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_subject(cfg, 0, "cse01.example.com"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_subject(cfg, 4, "cse01.example.com"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_CSE, "not a dns name!"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_CSE, "*.example.com"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_AE, "no scheme"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_CSE, bad_utf8), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_CSE, ""), MEF_ERR_INVALID_ARGUMENT);
  /* oneM2M forms (TS-0001 7.2): absolute ones are accepted, SP-relative ones need the SP-ID,
     a single-label CSE-ID is not a public domain name. */
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_AE, "//example.net/mn-cse/CAE-device1"), MEF_OK);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_CSE, "//example.net/mn-cse"), MEF_OK);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_NODE, "1.3.6.1.4.1.99999.1"), MEF_OK);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_AE, "/mn-cse/CAE-device1"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_CSE, "mn-cse"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_sp_id(cfg, "example"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_sp_id(cfg, "//*.example.net"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_sp_id(cfg, bad_utf8), MEF_ERR_INVALID_ARGUMENT);
  /* A PKCS #11 key: exactly one PIN source, never a PIN in the URI. */
  EXPECT(mef_config_set_pkcs11_key(cfg, "/m.so", NULL, NULL, NULL), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_pkcs11_key(cfg, "/m.so", NULL, "/pin", "PIN_VAR"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_pkcs11_key(cfg, "/m.so", "pkcs11:token=t;object=o?pin-value=1", "/pin", NULL),
         MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_pkcs11_key(cfg, "/m.so", "file:x", "/pin", NULL), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_pkcs11_key(cfg, bad_utf8, NULL, "/pin", NULL), MEF_ERR_INVALID_ARGUMENT);
  /* With the SP-ID known, the SP-relative forms resolve against it. */
  EXPECT(mef_config_set_sp_id(cfg, "//example.net"), MEF_OK);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_AE, "/mn-cse/CAE-device1"), MEF_OK);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_CSE, "mn-cse"), MEF_OK);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_AE, "CAE-device1"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_mef_fqdn(cfg, ""), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_psk_base_uri(cfg, "not a uri"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_psk_base_uri(cfg, bad_utf8), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_psk_base_uri(cfg, "https://mef.example.com:8444/.well-known/est"),
         MEF_OK);
  EXPECT(mef_config_set_mef_fqdn(cfg, "mef .example.com"), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_mef_fqdn(cfg, bad_utf8), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_key_type(cfg, 0), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_key_type(cfg, 0xFFFFFFFFu), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_tls_profile(cfg, 2), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_tls_profile(cfg, 0xFFFFFFFFu), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_timeouts(cfg, 0, 1000, 1000), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_timeouts(cfg, 1000, 0, 1000), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_timeouts(cfg, 1000, 1000, 0), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_polling(cfg, 0, 1000), MEF_ERR_INVALID_ARGUMENT);
  expect_bounds("after refused setters", cfg, 10000, 15000, 60000, 10, 600000);
  EXPECT(mef_config_set_store_dir(cfg, ""), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_store_dir(cfg, bad_utf8), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_log_callback(cfg, cb_log, NULL, 0), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_config_set_log_callback(cfg, cb_log, NULL, 6), MEF_ERR_INVALID_ARGUMENT);

  /* Valid values are accepted. */
  EXPECT(mef_config_set_key_type(cfg, MEF_KEY_ED25519), MEF_OK);
  EXPECT(mef_config_set_tls_profile(cfg, MEF_TLS_PROFILE_TS0003), MEF_OK);
  EXPECT(mef_config_set_tls_profile(cfg, MEF_TLS_PROFILE_MODERN), MEF_OK);
  EXPECT(mef_config_set_polling(cfg, 1, 0), MEF_OK);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_AE, "https://sp.example.com/cse01/CAE01"), MEF_OK);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_NODE, "urn:oid:1.3.6.1.4.1.99999.1.2.3"), MEF_OK);
  EXPECT(mef_config_set_client_cert_key_handle(cfg, c, cert_len, 7, MEF_KEY_ECDSA_P256_SHA256), MEF_OK);

  /* mef_client_new: inconsistent configurations, out untouched. */
  mef_client *client = NULL;
  EXPECT(mef_client_new(cfg, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_client_new(cfg, &client), MEF_ERR_INVALID_ARGUMENT); /* no base URI */
  EXPECT(mef_config_set_base_uri(cfg, "https://127.0.0.1:1/.well-known/est"), MEF_OK);
  EXPECT(mef_client_new(cfg, &client), MEF_ERR_INVALID_ARGUMENT); /* no storage */
  EXPECT(mef_config_set_credential_callbacks(cfg, &cred_cbs, NULL), MEF_OK);
  EXPECT(mef_client_new(cfg, &client), MEF_ERR_INVALID_ARGUMENT); /* no key callbacks */
  EXPECT(mef_config_set_store_dir(cfg, "/tmp/onem2m-est-null-args-unused"), MEF_OK);
  EXPECT(mef_client_new(cfg, &client), MEF_ERR_INVALID_ARGUMENT); /* two storages */
  TRUE(client == NULL);
  mef_config_free(cfg);
}

static void sinks_outside_callbacks(const char *ta, size_t ta_len) {
  /* The sinks only exist inside callbacks; with NULL sinks the calls fail cleanly. */
  EXPECT(mef_credentials_set(NULL, (const uint8_t *)ta, ta_len, (const uint8_t *)ta, ta_len), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_identity_set_subject(NULL, 9, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_identity_set_psk(NULL, NULL, NULL, 0), MEF_ERR_NULL_ARGUMENT);
}

static void lifecycle(const char *ta, size_t ta_len, const char *cert, size_t cert_len,
                      const char *key, size_t key_len, const char *store_dir) {
  mef_config *cfg = NULL;
  EXPECT(mef_config_new(&cfg), MEF_OK);
  if (!cfg) return;
  /* Port 1 on 127.0.0.1: nothing listens, so every network call fails fast with CONNECT. */
  EXPECT(mef_config_set_base_uri(cfg, "https://127.0.0.1:1/.well-known/est"), MEF_OK);
  EXPECT(mef_config_set_trust_anchors_pem(cfg, (const uint8_t *)ta, ta_len), MEF_OK);
  EXPECT(mef_config_set_client_cert_pem(cfg, (const uint8_t *)cert, cert_len, (const uint8_t *)key, key_len), MEF_OK);
  EXPECT(mef_config_set_subject(cfg, MEF_SUBJECT_CSE, "cse01.sp.example.com"), MEF_OK);
  EXPECT(mef_config_set_key_type(cfg, MEF_KEY_ECDSA_P256_SHA256), MEF_OK);
  EXPECT(mef_config_set_timeouts(cfg, 2000, 2000, 2000), MEF_OK);
  EXPECT(mef_config_set_polling(cfg, 3, 1000), MEF_OK);
  expect_bounds("as set", cfg, 2000, 2000, 2000, 3, 1000);
  EXPECT(mef_config_set_store_dir(cfg, store_dir), MEF_OK);
  EXPECT(mef_config_set_identity_callback(cfg, cb_identity, NULL), MEF_OK);
  EXPECT(mef_config_set_log_callback(cfg, cb_log, &log_lines, MEF_LOG_DEBUG), MEF_OK);

  mef_client *client = NULL;
  EXPECT(mef_client_new(cfg, &client), MEF_OK);
  mef_config_free(cfg); /* the client copied what it needs */
  TRUE(client != NULL);
  if (!client) return;
  TRUE(strcmp(mef_client_last_error(client), "") == 0);
  TRUE(mef_client_last_handshakes(client) == 0);

  EXPECT(mef_client_provision(client, 2), MEF_ERR_INVALID_ARGUMENT);
  TRUE(strlen(mef_client_last_error(client)) > 0);
  EXPECT(mef_client_reprovision(client, 3), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_client_reprovision(client, MEF_REPROVISION_RENEW), MEF_ERR_NOT_PROVISIONED);
  TRUE(strstr(mef_client_last_error(client), "no provisioned credentials") != NULL);
  EXPECT(mef_client_cacerts(client, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_client_csrattrs(client, NULL), MEF_ERR_NULL_ARGUMENT);

  int before = log_lines;
  mef_buffer *buf = (mef_buffer *)0x1;
  EXPECT(mef_client_cacerts(client, &buf), MEF_ERR_CONNECT);
  TRUE(buf == (mef_buffer *)0x1);
  TRUE(strstr(mef_client_last_error(client), "127.0.0.1") != NULL);
  TRUE(log_lines > before); /* the failure was logged through this handle's callback */
  EXPECT(mef_client_csrattrs(client, &buf), MEF_ERR_CONNECT);
  TRUE(buf == (mef_buffer *)0x1);
  EXPECT(mef_client_provision(client, MEF_KEY_GENERATE), MEF_ERR_CONNECT);
  TRUE(mef_result_cmd_status(MEF_ERR_CONNECT) == MEF_CMD_CERT_PROV_SERVER_ERROR);
  TRUE(mef_client_last_handshakes(client) == 0);
  EXPECT(mef_client_provision(client, MEF_KEY_SERVER_GENERATED), MEF_ERR_CONNECT);
  mef_client_free(client);
}

int main(int argc, char **argv) {
  need_args(argc, argv, 4, "TRUST_ANCHORS.pem DEVICE_CERT.pem DEVICE_KEY.pem STORE_DIR");
  size_t ta_len, cert_len, key_len;
  char *ta = read_file(argv[1], &ta_len);
  char *cert = read_file(argv[2], &cert_len);
  char *key = read_file(argv[3], &key_len);

  free_functions_accept_null();
  static_functions();
  null_handles(ta, ta_len);
  bad_config_arguments(ta, ta_len, cert, cert_len, key, key_len);
  sinks_outside_callbacks(ta, ta_len);
  lifecycle(ta, ta_len, cert, cert_len, key, key_len, argv[4]);

  free(ta);
  free(cert);
  free(key);
  printf("null_args: %d checks, %d failures\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
