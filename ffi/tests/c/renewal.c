/*
 * Renewal through the C API against the reference MEF (issue #12): mef_client_next_renewal /
 * mef_client_renewal_due on the installed certificate (with `now` passed in: the clock seam),
 * the policy setter, mef_client_renew re-provisioning while valid and re-bootstrapping with the
 * third-party certificate once expired, the failure kind and retry time of an unreachable MEF,
 * and NULL / bad arguments (out-parameters untouched).
 *
 * usage: renewal MEF_URL MEF_CA.pem DEVICE_CERT.pem DEVICE_KEY.pem SUBJECT_ID STORE_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

/* A client of the device (device_config, the third-party certificate only with BOOTSTRAP). */
static mef_client *make_client(const char *url, const struct device_pems *pems, const char *subject,
                               const char *dir, int bootstrap) {
  mef_config *cfg = device_config(url, pems, bootstrap, subject, dir);
  mef_client *client = NULL;
  TRUE(mef_config_set_timeouts(cfg, 5000, 5000, 10000) == MEF_OK);
  TRUE(mef_client_new(cfg, &client) == MEF_OK);
  mef_config_free(cfg);
  if (!client) exit(1);
  return client;
}

static void null_arguments(mef_client *client) {
  int due = 7;
  int64_t secs = 7;
  mef_renewal_path path = 7;
  EXPECT(mef_client_renewal_due(NULL, 0, &due), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_client_renewal_due(client, 0, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_client_next_renewal(NULL, &secs), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_client_next_renewal(client, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_client_set_renewal_policy(NULL, 0.5, 0, 0.1), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_client_renew(NULL, MEF_REPROVISION_RENEW, 0, &path), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_client_renew(client, 99, 0, &path), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_client_next_retry(NULL, 1, 0, &secs), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_client_next_retry(client, 1, 0, NULL), MEF_ERR_NULL_ARGUMENT);
  EXPECT(mef_client_next_retry(client, 0, 0, &secs), MEF_ERR_INVALID_ARGUMENT);
  TRUE(mef_client_last_failure_kind(NULL) == MEF_FAILURE_NONE);
  /* Out-of-range policies are refused and change nothing. */
  EXPECT(mef_client_set_renewal_policy(client, 0.0, 0, 0.1), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_client_set_renewal_policy(client, 1.5, 0, 0.1), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_client_set_renewal_policy(client, 0.5, 0, 1.0), MEF_ERR_INVALID_ARGUMENT);
  EXPECT(mef_client_set_renewal_policy(client, 0.5, 0, -0.5), MEF_ERR_INVALID_ARGUMENT);
  TRUE(mef_client_last_failure_kind(client) == MEF_FAILURE_FATAL);
  TRUE(due == 7 && secs == 7 && path == 7);
}

int main(int argc, char **argv) {
  need_args(argc, argv, 6,
            "MEF_URL MEF_CA.pem DEVICE_CERT.pem DEVICE_KEY.pem SUBJECT_ID STORE_DIR");
  struct device_pems pems = read_device_pems(argv[2], argv[3], argv[4]);
  const char *dir = argv[6];
  mef_client *client = make_client(argv[1], &pems, argv[5], dir, 1);

  /* Nothing installed yet: not provisioned, out-parameters untouched. */
  int due = 7;
  int64_t at = 7;
  EXPECT(mef_client_renewal_due(client, (int64_t)time(NULL), &due), MEF_ERR_NOT_PROVISIONED);
  EXPECT(mef_client_next_renewal(client, &at), MEF_ERR_NOT_PROVISIONED);
  TRUE(due == 7 && at == 7);
  null_arguments(client);

  EXPECT(mef_client_provision(client, MEF_KEY_GENERATE), MEF_OK);
  int64_t now = (int64_t)time(NULL);
  EXPECT(mef_client_next_renewal(client, &at), MEF_OK);
  /* The MEF issues for a year: due after about two thirds of it (jitter at most a tenth). */
  TRUE(at > now + 200LL * 86400 && at < now + 245LL * 86400);
  int64_t again = 0;
  EXPECT(mef_client_next_renewal(client, &again), MEF_OK);
  TRUE(again == at);
  EXPECT(mef_client_renewal_due(client, now, &due), MEF_OK);
  TRUE(due == 0);
  EXPECT(mef_client_renewal_due(client, at - 1, &due), MEF_OK);
  TRUE(due == 0);
  EXPECT(mef_client_renewal_due(client, at, &due), MEF_OK);
  TRUE(due == 1);

  /* Fraction 1 without jitter: due exactly at notAfter. A margin of a day: a day before. */
  int64_t not_after = 0, day_before = 0;
  EXPECT(mef_client_set_renewal_policy(client, 1.0, 0, 0.0), MEF_OK);
  EXPECT(mef_client_next_renewal(client, &not_after), MEF_OK);
  EXPECT(mef_client_set_renewal_policy(client, 0.5, 86400, 0.0), MEF_OK);
  EXPECT(mef_client_next_renewal(client, &day_before), MEF_OK);
  TRUE(not_after - day_before == 86400);
  TRUE(not_after > at);

  /* Renewal while valid: re-provisioning. */
  mef_renewal_path path = 7;
  EXPECT(mef_client_renew(client, MEF_REPROVISION_RENEW, now, &path), MEF_OK);
  TRUE(path == MEF_RENEWED_REPROVISIONED);
  TRUE(mef_client_last_failure_kind(client) == MEF_FAILURE_NONE);
  int64_t renewed_not_after = 0;
  EXPECT(mef_client_set_renewal_policy(client, 1.0, 0, 0.0), MEF_OK);
  EXPECT(mef_client_next_renewal(client, &renewed_not_after), MEF_OK);
  TRUE(renewed_not_after >= not_after);

  /* Past notAfter (as far as the device's clock says): re-bootstrap with the third-party
     certificate. */
  path = 7;
  EXPECT(mef_client_renew(client, MEF_REPROVISION_RENEW, renewed_not_after + 1, &path), MEF_OK);
  TRUE(path == MEF_RENEWED_REBOOTSTRAPPED);
  if (path != MEF_RENEWED_REBOOTSTRAPPED) fprintf(stderr, "renew: %s\n", mef_client_last_error(client));

  /* The same without a bootstrap credential: not provisioned, a client error, nothing changes. */
  mef_client *bare = make_client(argv[1], &pems, argv[5], dir, 0);
  int64_t bootstrapped_not_after = 0;
  EXPECT(mef_client_set_renewal_policy(bare, 1.0, 0, 0.0), MEF_OK);
  EXPECT(mef_client_next_renewal(bare, &bootstrapped_not_after), MEF_OK);
  TRUE(bootstrapped_not_after >= renewed_not_after);
  path = 7;
  EXPECT(mef_client_renew(bare, MEF_REPROVISION_RENEW, bootstrapped_not_after + 1, &path), MEF_ERR_NOT_PROVISIONED);
  TRUE(path == 7);
  TRUE(mef_client_last_failure_kind(bare) == MEF_FAILURE_FATAL);
  TRUE(strstr(mef_client_last_error(bare), "no bootstrap credential") != NULL);
  mef_client_free(bare);

  /* An unreachable MEF (a closed port): retryable, and the retry time is bounded by notAfter. */
  mef_client *down = make_client("https://localhost:1/.well-known/est", &pems, argv[5], dir, 0);
  EXPECT(mef_client_renew(down, MEF_REPROVISION_RENEW, now, NULL), MEF_ERR_CONNECT);
  TRUE(mef_client_last_failure_kind(down) == MEF_FAILURE_RETRYABLE);
  int64_t retry1 = 0, retry5 = 0, late = 0;
  EXPECT(mef_client_next_retry(down, 1, now, &retry1), MEF_OK);
  TRUE(retry1 >= now + 30 && retry1 <= now + 60);
  EXPECT(mef_client_next_retry(down, 5, now, &retry5), MEF_OK);
  TRUE(retry5 >= now + 480 && retry5 <= now + 960);
  TRUE(mef_client_last_failure_kind(down) == MEF_FAILURE_RETRYABLE);
  /* 100 s before notAfter: at most half of it away. */
  int64_t down_not_after = 0;
  EXPECT(mef_client_set_renewal_policy(down, 1.0, 0, 0.0), MEF_OK);
  EXPECT(mef_client_next_renewal(down, &down_not_after), MEF_OK);
  EXPECT(mef_client_next_retry(down, 20, down_not_after - 100, &late), MEF_OK);
  TRUE(late > down_not_after - 100 && late <= down_not_after - 50);
  mef_client_free(down);

  mef_client_free(client);
  free_device_pems(&pems);
  if (failures) {
    fprintf(stderr, "renewal: %d failure(s)\n", failures);
    return 1;
  }
  printf("renewal: all passed\n");
  return 0;
}
