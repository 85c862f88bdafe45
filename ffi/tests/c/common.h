/*
 * What every C test of the C API shares: the failure and check counters with their TRUE and
 * EXPECT macros, reading the fixture's files, the device's configuration, reporting a procedure
 * step, and the argument check of main(). The tests get the MEF fixture (scripts/lib/mef-fixture.sh: URLs, the MEF
 * CA, the device certificate and key, subject IDs) as command-line arguments from run.sh and
 * scripts/cross-test.sh.
 *
 * Portable C11 and stdio only: the same files are cross-compiled with mingw-w64 for Windows
 * and for ARM Linux (scripts/cross-test.sh). Functions are static inline, so a test that does
 * not use one is not warned about it (-Wall -Wextra -Werror).
 */
#ifndef ONEM2M_EST_C_TEST_COMMON_H
#define ONEM2M_EST_C_TEST_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onem2m_est.h"

static int failures = 0;
static int checks = 0;

/* COND must hold; otherwise the test goes on and fails at the end. */
#define TRUE(cond)                                                                             \
  do {                                                                                         \
    checks++;                                                                                  \
    if (!(cond)) {                                                                             \
      fprintf(stderr, "%s:%d: not true: %s\n", __FILE__, __LINE__, #cond);                    \
      failures++;                                                                              \
    }                                                                                          \
  } while (0)

/* EXPR must return the mef_result EXPECTED. */
#define EXPECT(expr, expected)                                                                 \
  do {                                                                                         \
    mef_result got_ = (expr);                                                                  \
    checks++;                                                                                  \
    if (got_ != (mef_result)(expected)) {                                                      \
      fprintf(stderr, "%s:%d: %s: got %u (%s), expected %s (%s)\n", __FILE__, __LINE__, #expr, \
              (unsigned)got_, mef_result_text(got_), #expected,                                \
              mef_result_text((mef_result)(expected)));                                        \
      failures++;                                                                              \
    }                                                                                          \
  } while (0)

/* Exits with status 2 and the usage line unless main() got ARGS arguments. */
static inline void need_args(int argc, char **argv, int args, const char *usage) {
  if (argc != args + 1) {
    fprintf(stderr, "usage: %s %s\n", argv[0], usage);
    exit(2);
  }
}

/* The contents of PATH, NUL-terminated (*LEN excludes the NUL), or NULL when it cannot be
   opened. Read in chunks: no seeking, so any stream will do. */
static inline char *try_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t cap = 0, n = 0, r;
  do {
    if (n == cap) {
      cap = cap ? cap * 2 : 4096;
      char *grown = realloc(buf, cap + 1);
      if (!grown) exit(2);
      buf = grown;
    }
    r = fread(buf + n, 1, cap - n, f);
    n += r;
  } while (r > 0);
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* try_read_file, exiting with status 2 when PATH cannot be read (a fixture file). */
static inline char *read_file(const char *path, size_t *len) {
  char *buf = try_read_file(path, len);
  if (!buf) {
    perror(path);
    exit(2);
  }
  return buf;
}

/* The contents of the file NAME in DIR (what a store installed), or NULL when it is not
   there. */
static inline char *try_file_in(const char *dir, const char *name) {
  char path[4096];
  size_t len;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return try_read_file(path, &len);
}

/* try_file_in, exiting with status 2 when the file is not there. */
static inline char *file_in(const char *dir, const char *name) {
  char path[4096];
  size_t len;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return read_file(path, &len);
}

/* Whether the file NAME exists in DIR. */
static inline int exists_in(const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (f) fclose(f);
  return f != NULL;
}

/* The device's fixture files, PEM: the MEF's trust anchors, the third-party client certificate
   chain and its key. */
struct device_pems {
  char *ta, *cert, *key;
  size_t ta_len, cert_len, key_len;
};

/* Reads the fixture files TA, CERT and KEY (exiting with status 2 when one cannot be read). */
static inline struct device_pems read_device_pems(const char *ta, const char *cert, const char *key) {
  struct device_pems p;
  p.ta = read_file(ta, &p.ta_len);
  p.cert = read_file(cert, &p.cert_len);
  p.key = read_file(key, &p.key_len);
  return p;
}

static inline void free_device_pems(struct device_pems *p) {
  free(p->ta);
  free(p->cert);
  free(p->key);
}

/* A new configuration of the device for the MEF at URL, each setter checked: P's trust anchors,
   with WITH_CERT its third-party certificate and key, the CSE-ID SUBJECT and the store
   directory DIR. */
static inline mef_config *device_config(const char *url, const struct device_pems *p, int with_cert,
                                        const char *subject, const char *dir) {
  mef_config *cfg = NULL;
  TRUE(mef_config_new(&cfg) == MEF_OK);
  TRUE(mef_config_set_base_uri(cfg, url) == MEF_OK);
  TRUE(mef_config_set_trust_anchors_pem(cfg, (const uint8_t *)p->ta, p->ta_len) == MEF_OK);
  if (with_cert)
    TRUE(mef_config_set_client_cert_pem(cfg, (const uint8_t *)p->cert, p->cert_len, (const uint8_t *)p->key,
                                        p->key_len) == MEF_OK);
  TRUE(mef_config_set_subject(cfg, MEF_SUBJECT_CSE, subject) == MEF_OK);
  TRUE(mef_config_set_store_dir(cfg, dir) == MEF_OK);
  return cfg;
}

/* Reports a procedure step of CLIENT: its result, and on failure why (counted as a failure). */
static inline void step(mef_client *client, const char *what, mef_result r) {
  if (r != MEF_OK) {
    fprintf(stderr, "%s: %s [%s]: %s\n", what, mef_result_text(r),
            mef_cmd_status_name(mef_result_cmd_status(r)), mef_client_last_error(client));
    failures++;
  } else {
    printf("ok: %s (%u handshake(s))\n", what, mef_client_last_handshakes(client));
  }
}

#endif
