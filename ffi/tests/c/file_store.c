/*
 * The C quick start against a running MEF, with the built-in file store: provision, read
 * /cacerts and /csrattrs into library buffers, renew, rekey and server-side keygen; checks
 * the files the store installed.
 *
 * usage: file_store MEF_URL MEF_CA.pem DEVICE_CERT.pem DEVICE_KEY.pem SUBJECT_ID STORE_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"

int main(int argc, char **argv) {
  need_args(argc, argv, 6,
            "MEF_URL MEF_CA.pem DEVICE_CERT.pem DEVICE_KEY.pem SUBJECT_ID STORE_DIR");
  struct device_pems pems = read_device_pems(argv[2], argv[3], argv[4]);
  const char *dir = argv[6];

  mef_config *cfg = device_config(argv[1], &pems, 1, argv[5], dir);
  mef_client *client = NULL;
  TRUE(mef_client_new(cfg, &client) == MEF_OK);
  mef_config_free(cfg);
  if (!client) return 1;

  mef_buffer *pem = NULL, *der = NULL;
  step(client, "cacerts", mef_client_cacerts(client, &pem));
  TRUE(pem && mef_buffer_len(pem) > 0 && memcmp(mef_buffer_data(pem), "-----BEGIN CERTIFICATE-----", 27) == 0);
  mef_buffer_free(pem);
  step(client, "csrattrs", mef_client_csrattrs(client, &der));
  TRUE(der && mef_buffer_len(der) > 2 && mef_buffer_data(der)[0] == 0x30); /* DER SEQUENCE */
  mef_buffer_free(der);

  step(client, "provision", mef_client_provision(client, MEF_KEY_GENERATE));
  char *installed = file_in(dir, "cert.pem");
  TRUE(strstr(installed, "-----BEGIN CERTIFICATE-----") == installed);
  free(installed);
  char *installed_key = file_in(dir, "key.pem");
  TRUE(strstr(installed_key, "-----BEGIN PRIVATE KEY-----") == installed_key);
#ifndef _WIN32
  /* Windows has no mode bits (the store directory's ACL protects the key; src/store.rs). */
  struct stat st;
  char path[4096];
  snprintf(path, sizeof path, "%s/key.pem", dir);
  TRUE(stat(path, &st) == 0 && (st.st_mode & 077) == 0);
#endif
  char *installed_ta = file_in(dir, "trust-anchors.pem");
  TRUE(strstr(installed_ta, "-----BEGIN CERTIFICATE-----") == installed_ta);
  free(installed_ta);

  step(client, "reprovision (renew)", mef_client_reprovision(client, MEF_REPROVISION_RENEW));
  char *renewed_key = file_in(dir, "key.pem");
  TRUE(strcmp(renewed_key, installed_key) == 0);
  step(client, "reprovision (rekey)", mef_client_reprovision(client, MEF_REPROVISION_REKEY));
  char *rekeyed = file_in(dir, "key.pem");
  TRUE(strcmp(rekeyed, installed_key) != 0);
  step(client, "reprovision (server keygen)", mef_client_reprovision(client, MEF_REPROVISION_SERVER_KEYGEN));
  char *server_key = file_in(dir, "key.pem");
  TRUE(strcmp(server_key, rekeyed) != 0);
  step(client, "provision (server keygen)", mef_client_provision(client, MEF_KEY_SERVER_GENERATED));

  /* CERT_PROV (TS-0003 8.3.9.7): with the FQDN of the MEF that issued the command set, a
     procedure first checks that the base URI is that MEF's. Another MEF's command is refused
     before any I/O as MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS; nothing is installed. */
  {
    char cp_dir[2048], cp_cert[2100];
    struct stat cp_st; /* (the mode-bit check's `st` above is Unix-only) */
    snprintf(cp_dir, sizeof cp_dir, "%s-certprov", dir);
    snprintf(cp_cert, sizeof cp_cert, "%s/cert.pem", cp_dir);
    mef_config *c2 = device_config(argv[1], &pems, 1, argv[5], cp_dir);
    mef_client *cp = NULL;
    TRUE(mef_config_set_mef_fqdn(c2, "mef.example.org") == MEF_OK);
    TRUE(mef_client_new(c2, &cp) == MEF_OK);
    if (cp) {
      mef_result r = mef_client_provision(cp, MEF_KEY_GENERATE);
      TRUE(r == MEF_ERR_INVALID_ARGUMENT);
      TRUE(mef_result_cmd_status(r) == MEF_CMD_UNACCEPTABLE_ARGUMENTS);
      TRUE(strstr(mef_client_last_error(cp), "mef.example.org") != NULL);
      TRUE(mef_client_last_handshakes(cp) == 0);
      TRUE(stat(cp_cert, &cp_st) != 0);
      mef_client_free(cp);
      cp = NULL;
    }
    /* The MEF_URL host is localhost: the same command from that MEF runs. */
    TRUE(mef_config_set_mef_fqdn(c2, "LOCALHOST") == MEF_OK);
    TRUE(mef_client_new(c2, &cp) == MEF_OK);
    if (cp) {
      step(cp, "provision (CERT_PROV from this MEF)", mef_client_provision(cp, MEF_KEY_GENERATE));
      TRUE(stat(cp_cert, &cp_st) == 0);
      mef_client_free(cp);
    }
    mef_config_free(c2);
  }

  free(installed_key);
  free(renewed_key);
  free(rekeyed);
  free(server_key);
  mef_client_free(client);
  free_device_pems(&pems);
  printf("file_store: %d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
