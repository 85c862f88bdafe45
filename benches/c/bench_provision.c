/*
 * bench_provision.c: the procedures through the C ABI, timed (BENCHMARKS.md).
 *
 *   bench_provision URL CA_PEM CERT_PEM KEY_PEM OUT_DIR ITERS
 *
 * Runs Initial Certificate Provisioning ITERS times, then rekeying Re-Provisioning ITERS times
 * (after 3 warm-up runs each, unless ITERS is 1), with the library's file store in OUT_DIR, and
 * prints for each: wall time and CPU time of the calling thread per procedure (median, p10,
 * p90, min, max) and the TLS handshakes of the last run. ITERS=1 runs each procedure once
 * without warm-up, for measuring the process as a whole (/usr/bin/time -v: peak RSS).
 *
 * Build: cc -O2 bench_provision.c -I include -L target/release -lonem2m_est -o bench_provision
 */
#include <onem2m_est.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../examples/c/common.h" /* read_file, free_secret */

static double now_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print_row(const char *name, double *v, int n)
{
    qsort(v, n, sizeof *v, cmp_double);
    printf("  %-28s median %9.3f ms  p10 %9.3f  p90 %9.3f  min %9.3f  max %9.3f  (n=%d)\n", name,
           v[n / 2], v[(n - 1) / 10], v[(n - 1) * 9 / 10], v[0], v[n - 1], n);
}

/* Runs one procedure `n` times after `warmup` untimed runs; prints its figures. */
static int run(mef_client *client, const char *title, int reprovision, int warmup, int n)
{
    double *wall = calloc(n, sizeof *wall), *cpu = calloc(n, sizeof *cpu);
    if (wall == NULL || cpu == NULL)
        return -1;
    for (int i = 0; i < warmup + n; i++) {
        double w0 = now_ms(CLOCK_MONOTONIC), c0 = now_ms(CLOCK_THREAD_CPUTIME_ID);
        mef_result r = reprovision ? mef_client_reprovision(client, MEF_REPROVISION_REKEY)
                                   : mef_client_provision(client, MEF_KEY_GENERATE);
        double w1 = now_ms(CLOCK_MONOTONIC), c1 = now_ms(CLOCK_THREAD_CPUTIME_ID);
        if (r != MEF_OK) {
            fprintf(stderr, "%s failed: %s: %s\n", title, mef_result_text(r),
                    mef_client_last_error(client));
            free(wall);
            free(cpu);
            return -1;
        }
        if (i >= warmup) {
            wall[i - warmup] = w1 - w0;
            cpu[i - warmup] = c1 - c0;
        }
    }
    printf("%s\n", title);
    print_row("wall time", wall, n);
    print_row("client CPU (thread)", cpu, n);
    printf("  %-28s %u (last run)\n", "TLS handshakes", mef_client_last_handshakes(client));
    free(wall);
    free(cpu);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s URL CA_PEM CERT_PEM KEY_PEM OUT_DIR ITERS\n", argv[0]);
        return 2;
    }
    int iters = atoi(argv[6]);
    if (iters < 1 || iters > 100000) {
        fprintf(stderr, "ITERS must be 1 to 100000\n");
        return 2;
    }
    int warmup = iters == 1 ? 0 : 3;
    uint8_t *ta = NULL, *cert = NULL, *key = NULL;
    size_t ta_len, cert_len, key_len;
    mef_config *config = NULL;
    mef_client *client = NULL;
    int status = 1;
    mef_result r;
    if (read_file(argv[2], &ta, &ta_len) || read_file(argv[3], &cert, &cert_len) ||
        read_file(argv[4], &key, &key_len))
        goto out;
    if ((r = mef_config_new(&config)) != MEF_OK ||
        (r = mef_config_set_base_uri(config, argv[1])) != MEF_OK ||
        (r = mef_config_set_trust_anchors_pem(config, ta, ta_len)) != MEF_OK ||
        (r = mef_config_set_client_cert_pem(config, cert, cert_len, key, key_len)) != MEF_OK ||
        (r = mef_config_set_subject(config, MEF_SUBJECT_CSE, "cse01.sp.example.com")) != MEF_OK ||
        (r = mef_config_set_timeouts(config, 5000, 5000, 10000)) != MEF_OK ||
        (r = mef_config_set_store_dir(config, argv[5])) != MEF_OK ||
        (r = mef_client_new(config, &client)) != MEF_OK) {
        fprintf(stderr, "configuration: %s\n", mef_result_text(r));
        goto out;
    }
    printf("# C ABI (onem2m-est %s), %d iteration(s) after %d warm-up\n", mef_version(), iters,
           warmup);
    if (run(client, "Initial Certificate Provisioning, C ABI, file store", 0, warmup, iters) ||
        run(client, "Re-Provisioning (rekey), C ABI, file store", 1, warmup, iters))
        goto out;
    status = 0;
out:
    mef_client_free(client);
    mef_config_free(config);
    free(ta);
    free(cert);
    free_secret(key, key_len);
    return status;
}
