/*
 * The PPSK-based RSPF (TS-0003 8.3.2.1) through the C API against a running MEF: a device that
 * holds only (KpmID, Kpm) and the MEF URI provisions over TLS-PSK, ends with an installed
 * certificate and trust anchors, then re-provisions (renew) over the MEF's certificate port
 * with what was installed. Also: a wrong Kpm (MEF_ERR_TLS, CERT_PROV_SERVER_ERROR, nothing
 * installed), /cacerts and /csrattrs over TLS-PSK, the PSK supplied by the identity callback,
 * and a PSK with a client certificate (ambiguous RSPF).
 *
 * usage: psk MEF_PSK_URL MEF_URL KPM_ID KPM_HEX PSK_SUBJECT_ID DEVICE_CERT.pem DEVICE_KEY.pem WORK_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _WIN32
/* Windows directories have no mode: _mkdir takes the path only. */
#include <direct.h>
#define mkdir(path, mode) _mkdir(path)
#endif

#include "common.h"

/* Hexadecimal text -> bytes; returns the length, or 0 on bad input. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
  size_t n = strlen(hex);
  if (n % 2 != 0 || n / 2 > cap) return 0;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1) return 0;
    out[i] = (uint8_t)v;
  }
  return n / 2;
}

static void wipe(volatile uint8_t *p, size_t n) {
  while (n--) *p++ = 0;
}

/* The installed set of the file store: a certificate, a 0600 key, trust anchors. */
static void check_installed(const char *dir) {
  char *cert = try_file_in(dir, "cert.pem");
  char *key = try_file_in(dir, "key.pem");
  char *ta = try_file_in(dir, "trust-anchors.pem");
  TRUE(cert && strstr(cert, "-----BEGIN CERTIFICATE-----") == cert);
  TRUE(key && strstr(key, "-----BEGIN PRIVATE KEY-----") == key);
  TRUE(ta && strstr(ta, "-----BEGIN CERTIFICATE-----") == ta);
#ifndef _WIN32
  /* Windows has no mode bits (the store directory's ACL protects the key; src/store.rs). */
  char path[4096];
  struct stat st;
  snprintf(path, sizeof path, "%s/key.pem", dir);
  TRUE(stat(path, &st) == 0 && (st.st_mode & 077) == 0);
#endif
  free(cert);
  free(key);
  free(ta);
}

static mef_config *base_config(const char *uri, const char *store) {
  mef_config *cfg = NULL;
  TRUE(mef_config_new(&cfg) == MEF_OK);
  TRUE(mef_config_set_base_uri(cfg, uri) == MEF_OK);
  TRUE(mef_config_set_store_dir(cfg, store) == MEF_OK);
  TRUE(mef_config_set_timeouts(cfg, 10000, 15000, 30000) == MEF_OK);
  return cfg;
}

static mef_client *new_client(mef_config *cfg) {
  mef_client *client = NULL;
  mef_result r = mef_client_new(cfg, &client);
  TRUE(r == MEF_OK);
  mef_config_free(cfg);
  if (!client) {
    fprintf(stderr, "mef_client_new: %s\n", mef_result_text(r));
    exit(1);
  }
  return client;
}

/* The identity callback of a host that keeps (KpmID, Kpm) in its own storage. */
struct host {
  const char *kpm_id;
  const uint8_t *kpm;
  size_t kpm_len;
  const char *subject_id;
  int calls;
};

static int cb_identity(void *user_data, mef_identity_sink *sink) {
  struct host *h = user_data;
  h->calls++;
  /* Argument checks inside the callback: refused, the sink unchanged. */
  TRUE(mef_identity_set_psk(NULL, h->kpm_id, h->kpm, h->kpm_len) == MEF_ERR_NULL_ARGUMENT);
  TRUE(mef_identity_set_psk(sink, NULL, h->kpm, h->kpm_len) == MEF_ERR_NULL_ARGUMENT);
  TRUE(mef_identity_set_psk(sink, h->kpm_id, NULL, h->kpm_len) == MEF_ERR_NULL_ARGUMENT);
  TRUE(mef_identity_set_psk(sink, h->kpm_id, h->kpm, 15) == MEF_ERR_INVALID_ARGUMENT);
  TRUE(mef_identity_set_psk(sink, "", h->kpm, h->kpm_len) == MEF_ERR_INVALID_ARGUMENT);
  if (mef_identity_set_subject(sink, MEF_SUBJECT_CSE, h->subject_id) != MEF_OK) return 7;
  /* The library copies the key: the host could wipe its buffer right after this call. */
  return mef_identity_set_psk(sink, h->kpm_id, h->kpm, h->kpm_len) == MEF_OK ? MEF_CB_OK : 8;
}

int main(int argc, char **argv) {
  need_args(argc, argv, 8,
            "MEF_PSK_URL MEF_URL KPM_ID KPM_HEX PSK_SUBJECT_ID DEVICE_CERT.pem DEVICE_KEY.pem WORK_DIR");
  const char *psk_url = argv[1], *cert_url = argv[2], *kpm_id = argv[3], *subject_id = argv[5];
  const char *work = argv[8];
  uint8_t kpm[64];
  size_t kpm_len = unhex(argv[4], kpm, sizeof kpm);
  if (kpm_len < 16) {
    fprintf(stderr, "bad KPM_HEX\n");
    return 2;
  }
  size_t cert_len, key_len;
  char *device_cert = try_read_file(argv[6], &cert_len);
  char *device_key = try_read_file(argv[7], &key_len);
  if (!device_cert || !device_key) {
    fprintf(stderr, "cannot read the device certificate or key\n");
    return 2;
  }
  if (mkdir(work, 0700) != 0) {
    perror(work);
    return 2;
  }
  char wrong_dir[4096], dir[4096], cb_dir[4096], amb_dir[4096];
  snprintf(wrong_dir, sizeof wrong_dir, "%s/wrong-kpm", work);
  snprintf(dir, sizeof dir, "%s/psk", work);
  snprintf(cb_dir, sizeof cb_dir, "%s/psk-callback", work);
  snprintf(amb_dir, sizeof amb_dir, "%s/ambiguous", work);

  /* 1. A wrong Kpm: the handshake fails (TLS, server side) and nothing is installed. */
  {
    uint8_t wrong[64];
    memcpy(wrong, kpm, kpm_len);
    wrong[0] ^= 0x01;
    mef_config *cfg = base_config(psk_url, wrong_dir);
    TRUE(mef_config_set_psk(cfg, kpm_id, wrong, kpm_len) == MEF_OK);
    wipe(wrong, sizeof wrong); /* the configuration holds its own copy */
    mef_client *client = new_client(cfg);
    mef_result r = mef_client_provision(client, MEF_KEY_GENERATE);
    printf("wrong Kpm: %s [%s]: %s\n", mef_result_text(r),
           mef_cmd_status_name(mef_result_cmd_status(r)), mef_client_last_error(client));
    TRUE(r == MEF_ERR_TLS);
    TRUE(mef_result_cmd_status(r) == MEF_CMD_CERT_PROV_SERVER_ERROR);
    TRUE(strlen(mef_client_last_error(client)) > 0);
    TRUE(!exists_in(wrong_dir, "cert.pem") && !exists_in(wrong_dir, "key.pem") &&
         !exists_in(wrong_dir, "trust-anchors.pem"));
    mef_buffer *buf = NULL;
    TRUE(mef_client_cacerts(client, &buf) == MEF_ERR_TLS);
    TRUE(buf == NULL);
    mef_client_free(client);
  }

  /* 2. Only (KpmID, Kpm) and the MEF URI: /cacerts, /csrattrs, then Initial Certificate
   *    Provisioning; no trust anchors, no client certificate, no subject configured (the MEF
   *    asks for the KpmID's identity in its CSR attributes). */
  char *installed_cert = NULL, *installed_key = NULL, *installed_ta = NULL;
  {
    mef_config *cfg = base_config(psk_url, dir);
    TRUE(mef_config_set_psk(cfg, kpm_id, kpm, kpm_len) == MEF_OK);
    mef_client *client = new_client(cfg);
    mef_buffer *pem = NULL, *der = NULL;
    step(client, "cacerts over TLS-PSK", mef_client_cacerts(client, &pem));
    TRUE(pem && mef_buffer_len(pem) > 0 &&
         memcmp(mef_buffer_data(pem), "-----BEGIN CERTIFICATE-----", 27) == 0);
    mef_buffer_free(pem);
    step(client, "csrattrs over TLS-PSK", mef_client_csrattrs(client, &der));
    TRUE(der && mef_buffer_len(der) > 2 && mef_buffer_data(der)[0] == 0x30);
    mef_buffer_free(der);
    TRUE(!exists_in(dir, "cert.pem")); /* those install nothing */

    step(client, "provision over TLS-PSK", mef_client_provision(client, MEF_KEY_GENERATE));
    check_installed(dir);
    installed_cert = try_file_in(dir, "cert.pem");
    installed_key = try_file_in(dir, "key.pem");
    installed_ta = try_file_in(dir, "trust-anchors.pem");
    /* Re-provisioning authenticates with the installed certificate; the MEF refuses
       /simplereenroll on the PSK listener (CR 8.3.Z.2.3 pre-condition C), and the PSK
       client does not accept the certificate listener: use the certificate port (3.). */
    mef_client_free(client);
  }

  /* 3. Re-provisioning (renew) over the certificate port with the installed credentials: the
   *    MEF is authenticated by the trust anchors fetched over TLS-PSK. */
  {
    mef_client *client = new_client(base_config(cert_url, dir));
    step(client, "reprovision (renew) over the certificate port",
         mef_client_reprovision(client, MEF_REPROVISION_RENEW));
    check_installed(dir);
    char *cert = try_file_in(dir, "cert.pem");
    char *key = try_file_in(dir, "key.pem");
    TRUE(cert && installed_cert && strcmp(cert, installed_cert) != 0);
    TRUE(key && installed_key && strcmp(key, installed_key) == 0);
    free(cert);
    free(key);
    mef_client_free(client);
  }

  /* 4. The PSK supplied by the identity callback (nothing secret in the configuration). */
  {
    struct host h = {kpm_id, kpm, kpm_len, subject_id, 0};
    mef_config *cfg = base_config(psk_url, cb_dir);
    TRUE(mef_config_set_identity_callback(cfg, cb_identity, &h) == MEF_OK);
    mef_client *client = new_client(cfg);
    step(client, "provision with the PSK from the identity callback",
         mef_client_provision(client, MEF_KEY_GENERATE));
    TRUE(h.calls == 1);
    check_installed(cb_dir);
    char *ta = try_file_in(cb_dir, "trust-anchors.pem");
    TRUE(ta && installed_ta && strcmp(ta, installed_ta) == 0);
    free(ta);
    mef_client_free(client);
  }

  /* 5. A PSK and a third-party client certificate: ambiguous RSPF. */
  {
    mef_config *cfg = base_config(psk_url, amb_dir);
    TRUE(mef_config_set_client_cert_pem(cfg, (const uint8_t *)device_cert, cert_len,
                                        (const uint8_t *)device_key, key_len) == MEF_OK);
    TRUE(mef_config_set_psk(cfg, kpm_id, kpm, kpm_len) == MEF_OK);
    mef_client *client = NULL;
    TRUE(mef_client_new(cfg, &client) == MEF_ERR_INVALID_ARGUMENT);
    TRUE(client == NULL);
    mef_config_free(cfg);

    /* The same through the identity callback: only known when provisioning. */
    struct host h = {kpm_id, kpm, kpm_len, subject_id, 0};
    cfg = base_config(psk_url, amb_dir);
    TRUE(mef_config_set_client_cert_pem(cfg, (const uint8_t *)device_cert, cert_len,
                                        (const uint8_t *)device_key, key_len) == MEF_OK);
    TRUE(mef_config_set_identity_callback(cfg, cb_identity, &h) == MEF_OK);
    client = new_client(cfg);
    mef_result r = mef_client_provision(client, MEF_KEY_GENERATE);
    TRUE(r == MEF_ERR_INVALID_ARGUMENT);
    TRUE(mef_result_cmd_status(r) == MEF_CMD_UNACCEPTABLE_ARGUMENTS);
    TRUE(strstr(mef_client_last_error(client), "ambiguous") != NULL);
    TRUE(!exists_in(amb_dir, "cert.pem"));
    mef_client_free(client);
  }

  wipe(kpm, sizeof kpm);
  free(installed_cert);
  free(installed_key);
  free(installed_ta);
  free(device_cert);
  free(device_key);
  printf("psk: %d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
