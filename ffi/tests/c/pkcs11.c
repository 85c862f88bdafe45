/*
 * The device key in a PKCS #11 token (SoftHSM2) through the C API: mef_config_set_pkcs11_key
 * with the built-in store directory, against the reference MEF. Provisions with the key pair
 * generated in the token, re-provisions (renew, then mef_client_renew), checks the installed
 * files (key.uri recording the token key, no key.pem anywhere), that /serverkeygen is refused
 * before any connection, and that a wrong PIN is the documented client-side error without the
 * PIN in the message. tests/c/run.sh initialises the tokens and checks them with pkcs11-tool.
 *
 * usage: pkcs11 MEF_URL MEF_CA.pem DEVICE_CERT.pem DEVICE_KEY.pem SUBJECT_ID STORE_DIR MODULE
 *               TOKEN PIN_FILE WRONG_TOKEN WRONG_PIN_FILE
 * (WRONG_TOKEN is another token: login state is per process and token, so a wrong PIN must
 * meet a token this process has not logged in to.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

/* A configuration for the token key: the device's (third-party certificate, subject, store
   directory) with the key URI and PIN file. */
static mef_config *config(char **argv, const struct device_pems *pems, const char *uri, const char *pin_file) {
  mef_config *cfg = device_config(argv[1], pems, 1, argv[5], argv[6]);
  TRUE(mef_config_set_pkcs11_key(cfg, argv[7], uri, pin_file, NULL) == MEF_OK);
  return cfg;
}

int main(int argc, char **argv) {
  need_args(argc, argv, 11,
            "MEF_URL MEF_CA.pem DEVICE_CERT.pem DEVICE_KEY.pem SUBJECT_ID STORE_DIR MODULE TOKEN "
            "PIN_FILE WRONG_TOKEN WRONG_PIN_FILE");
  struct device_pems pems = read_device_pems(argv[2], argv[3], argv[4]);
  size_t pin_len;
  const char *dir = argv[6];
  char uri[512], wrong_uri[512], prefix[600];
  snprintf(uri, sizeof uri, "pkcs11:token=%s;object=device", argv[8]);
  snprintf(wrong_uri, sizeof wrong_uri, "pkcs11:token=%s;object=device", argv[10]);
  snprintf(prefix, sizeof prefix, "%s;id=", uri);
  char *wrong_pin = read_file(argv[11], &pin_len);
  if (pin_len > 0 && wrong_pin[pin_len - 1] == '\n') wrong_pin[pin_len - 1] = '\0';

  /* Provision: the key pair generated in the token, its URI recorded in key.uri. */
  mef_config *cfg = config(argv, &pems, uri, argv[9]);
  mef_client *client = NULL;
  TRUE(mef_client_new(cfg, &client) == MEF_OK); /* loads the module, logs in */
  mef_config_free(cfg);
  if (!client) return 1;
  step(client, "provision (key generated in the token)", mef_client_provision(client, MEF_KEY_GENERATE));
  TRUE(exists_in(dir, "cert.pem") && exists_in(dir, "trust-anchors.pem") && exists_in(dir, "key.uri"));
  TRUE(!exists_in(dir, "key.pem") && !exists_in(dir, "current/key.pem"));
  char *first = file_in(dir, "key.uri");
  TRUE(strncmp(first, prefix, strlen(prefix)) == 0);
  char *first_cert = file_in(dir, "cert.pem");
  mef_client_free(client);

  /* Re-provision with a client of the URI the directory records (uri NULL): renew keeps the
     key, then mef_client_renew re-provisions once more (the certificate is valid). */
  cfg = config(argv, &pems, NULL, argv[9]);
  client = NULL;
  TRUE(mef_client_new(cfg, &client) == MEF_OK);
  mef_config_free(cfg);
  if (!client) return 1;
  step(client, "reprovision (renew)", mef_client_reprovision(client, MEF_REPROVISION_RENEW));
  char *renewed = file_in(dir, "key.uri");
  char *renewed_cert = file_in(dir, "cert.pem");
  TRUE(strcmp(renewed, first) == 0);
  TRUE(strcmp(renewed_cert, first_cert) != 0);
  mef_renewal_path path = 99;
  step(client, "renew", mef_client_renew(client, MEF_REPROVISION_RENEW, (int64_t)time(NULL), &path));
  TRUE(path == MEF_RENEWED_REPROVISIONED);
  char *renewed_again = file_in(dir, "cert.pem");
  TRUE(strcmp(renewed_again, renewed_cert) != 0);
  TRUE(!exists_in(dir, "key.pem") && !exists_in(dir, "current/key.pem"));

  /* /serverkeygen: the MEF would make the key, outside the token. Refused before any
     connection (tests/pkcs11.rs counts them), as an unacceptable argument; nothing changes. */
  mef_result r = mef_client_reprovision(client, MEF_REPROVISION_SERVER_KEYGEN);
  TRUE(r == MEF_ERR_INVALID_ARGUMENT);
  TRUE(mef_result_cmd_status(r) == MEF_CMD_UNACCEPTABLE_ARGUMENTS);
  TRUE(strstr(mef_client_last_error(client), "/serverkeygen") != NULL);
  char *after = file_in(dir, "cert.pem");
  TRUE(strcmp(after, renewed_again) == 0);
  mef_client_free(client);

  /* A wrong PIN (on a token this process has not logged in to): mef_client_new fails with
     MEF_ERR_KEY, a client-side error; the message never carries the PIN. */
  char wrong_dir[4200];
  snprintf(wrong_dir, sizeof wrong_dir, "%s-wrong-pin", dir);
  cfg = config(argv, &pems, wrong_uri, argv[11]);
  TRUE(mef_config_set_store_dir(cfg, wrong_dir) == MEF_OK);
  client = NULL;
  r = mef_client_new(cfg, &client);
  TRUE(r == MEF_ERR_KEY);
  TRUE(mef_result_cmd_status(r) == MEF_CMD_CERT_PROV_CLIENT_ERROR);
  TRUE(client == NULL);
  const char *why = mef_config_last_error(cfg);
  TRUE(why != NULL && strstr(why, "PIN was refused") != NULL);
  TRUE(why != NULL && wrong_pin[0] != '\0' && strstr(why, wrong_pin) == NULL);
  if (why) printf("ok: wrong PIN refused: %s\n", why);
  mef_config_free(cfg);
  TRUE(!exists_in(wrong_dir, "cert.pem"));

  free(first);
  free(first_cert);
  free(renewed);
  free(renewed_cert);
  free(renewed_again);
  free(after);
  free(wrong_pin);
  free_device_pems(&pems);
  printf("pkcs11: %d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
