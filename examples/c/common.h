/*
 * common.h: the helpers the C examples (and benches/c) share: reading a file, wiping a key
 * buffer, reporting a failed call. Include it after <onem2m_est.h>.
 */
#ifndef ONEM2M_EST_EXAMPLES_COMMON_H
#define ONEM2M_EST_EXAMPLES_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a whole file into a malloc'ed buffer. */
static inline int read_file(const char *path, uint8_t **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf != NULL) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        uint8_t *bigger = realloc(buf, cap * 2);
        if (bigger == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int failed = buf == NULL || ferror(f);
    fclose(f);
    if (failed) {
        fprintf(stderr, "%s: read error\n", path);
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/* Wipes and frees a buffer that held a private key. */
static inline void free_secret(uint8_t *buf, size_t len)
{
    if (buf == NULL)
        return;
    volatile uint8_t *p = buf; /* volatile: the compiler may not drop the wipe */
    while (len--)
        *p++ = 0;
    free(buf);
}

/* Reports a failed call: the result, its CERT_PROV cmdStatusCode (TS-0003 8.3.9.7) and the
 * handle's detailed message. */
static inline void report(const char *what, mef_result r, const mef_client *client)
{
    fprintf(stderr, "%s failed: %s (%s)\n", what, mef_result_text(r),
            mef_cmd_status_name(mef_result_cmd_status(r)));
    if (client != NULL)
        fprintf(stderr, "  %s\n", mef_client_last_error(client));
}

#endif
