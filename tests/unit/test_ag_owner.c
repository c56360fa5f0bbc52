/* test_ag_owner: the SDKs' balancing rule as ag_own_balance applies it. The
 * claims against a real container are in tests/interop/test_owner.py. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/owner.h"
#include "tests/unit/cu.h"

#define NOW    1000000000LL
#define EXPIRY 60000LL

static const char *P8[] = {"0", "1", "2", "3", "4", "5", "6", "7"};

static ag_own_rec_t rec(const char *pid, const char *owner, int64_t age_ms) {
  ag_own_rec_t r = {0};
  strcpy(r.pid, pid);
  strcpy(r.owner, owner);
  strcpy(r.etag, "\"0x1\"");
  r.mtime_ms = NOW - age_ms;
  return r;
}

static size_t count_owned_by(const ag_own_rec_t *r, size_t n, const size_t *claim, size_t nc,
                             const char *owner) {
  size_t k = 0;
  for (size_t c = 0; c < nc; c++)
    for (size_t i = 0; i < n; i++)
      if (!strcmp(r[i].pid, P8[claim[c]]) && !strcmp(r[i].owner, owner))
        k++;
  return k;
}

static void test_empty_store_claims_one_partition_per_round(void) {
  size_t claim[8];
  unsigned seed = 1;
  size_t nc = ag_own_balance(NULL, 0, P8, 8, "me", NOW, EXPIRY, AG_OWN_BALANCED, &seed, claim);
  CU_ASSERT_EQUAL(nc, 1);
  CU_ASSERT(claim[0] < 8);
}

static void test_own_live_claims_are_renewed(void) {
  ag_own_rec_t r[3] = {rec("0", "me", 1000), rec("1", "me", 2000), rec("2", "other", 1000)};
  size_t claim[8];
  unsigned seed = 1;
  size_t nc = ag_own_balance(r, 3, P8, 8, "me", NOW, EXPIRY, AG_OWN_BALANCED, &seed, claim);
  /* two renewals plus one of the five free partitions */
  CU_ASSERT_EQUAL(nc, 3);
  CU_ASSERT_EQUAL(count_owned_by(r, 3, claim, nc, "me"), 2);
  CU_ASSERT_EQUAL(count_owned_by(r, 3, claim, nc, "other"), 0);
  CU_ASSERT(claim[2] >= 3);
}

static void test_expired_and_released_records_are_claimable(void) {
  /* everything owned by a dead agent (older than the expiry) or released */
  ag_own_rec_t r[8];
  for (int i = 0; i < 8; i++)
    r[i] = rec(P8[i], i < 4 ? "dead" : "", i < 4 ? EXPIRY + 1000 : 10);
  size_t claim[8];
  unsigned seed = 7;
  size_t nc = ag_own_balance(r, 8, P8, 8, "me", NOW, EXPIRY, AG_OWN_BALANCED, &seed, claim);
  CU_ASSERT_EQUAL(nc, 1);
}

static void test_steals_from_the_owner_with_the_most_below_fair_share(void) {
  /* "big" holds 6, "small" 2, me none: fair share 8/3 = 2 */
  ag_own_rec_t r[8];
  for (int i = 0; i < 8; i++)
    r[i] = rec(P8[i], i < 6 ? "big" : "small", 1000);
  for (unsigned s = 0; s < 20; s++) {
    size_t claim[8];
    unsigned seed = s;
    size_t nc = ag_own_balance(r, 8, P8, 8, "me", NOW, EXPIRY, AG_OWN_BALANCED, &seed, claim);
    CU_ASSERT_EQUAL_FATAL(nc, 1);
    CU_ASSERT_STR(r[claim[0]].owner, "big");
  }
}

static void test_no_steal_at_fair_share(void) {
  /* 8 partitions, 3 owners at 3/3/2: me with 2 (= 8/3) steals nothing, as
   * nobody is above the ceiling (3) */
  ag_own_rec_t r[8];
  for (int i = 0; i < 8; i++)
    r[i] = rec(P8[i], i < 3 ? "big" : i < 6 ? "mid" : "me", 1000);
  for (ag_own_mode_t m = AG_OWN_BALANCED; m <= AG_OWN_GREEDY; m++) {
    size_t claim[8];
    unsigned seed = 3;
    size_t nc = ag_own_balance(r, 8, P8, 8, "me", NOW, EXPIRY, m, &seed, claim);
    CU_ASSERT_EQUAL(nc, 2);
    CU_ASSERT_EQUAL(count_owned_by(r, 8, claim, nc, "me"), 2);
  }
}

static void test_steal_from_above_the_ceiling_at_the_floor(void) {
  /* 4/2/2: me at the floor (2) but "big" above the ceiling (3): one steal
   * from big (Go's and .NET's aboveMax rule). Without it a greedy start can
   * leave e.g. 12/10/10 over 32 partitions for good. */
  ag_own_rec_t r[8];
  for (int i = 0; i < 8; i++)
    r[i] = rec(P8[i], i < 4 ? "big" : i < 6 ? "mid" : "me", 1000);
  for (ag_own_mode_t m = AG_OWN_BALANCED; m <= AG_OWN_GREEDY; m++) {
    size_t claim[8];
    unsigned seed = 3;
    size_t nc = ag_own_balance(r, 8, P8, 8, "me", NOW, EXPIRY, m, &seed, claim);
    CU_ASSERT_EQUAL(nc, 3);
    CU_ASSERT_EQUAL(count_owned_by(r, 8, claim, nc, "big"), 1);
  }
}

static void test_owner_at_ceiling_claims_nothing_new(void) {
  /* me holds 4 of 8 with one other owner: at the ceiling, free ones stay */
  ag_own_rec_t r[6];
  for (int i = 0; i < 6; i++)
    r[i] = rec(P8[i], i < 4 ? "me" : "other", 1000);
  size_t claim[8];
  unsigned seed = 3;
  size_t nc = ag_own_balance(r, 6, P8, 8, "me", NOW, EXPIRY, AG_OWN_BALANCED, &seed, claim);
  CU_ASSERT_EQUAL(nc, 4);
}

/* Three owners taking turns, each applying its claims to the records, from
 * an empty store: 2 or 3 each after 30 rounds. */
static void converge(ag_own_mode_t mode) {
  ag_own_rec_t r[8];
  size_t nrec = 0;
  const char *who[3] = {"a", "b", "c"};
  unsigned seed = 11;
  for (int round = 0; round < 30; round++) {
    const char *self = who[round % 3];
    size_t claim[8];
    size_t nc = ag_own_balance(r, nrec, P8, 8, self, NOW, EXPIRY, mode, &seed, claim);
    for (size_t c = 0; c < nc; c++) {
      size_t i = 0;
      while (i < nrec && strcmp(r[i].pid, P8[claim[c]]))
        i++;
      if (i == nrec)
        r[nrec++] = rec(P8[claim[c]], self, 0);
      else
        strcpy(r[i].owner, self);
    }
  }
  CU_ASSERT_EQUAL(nrec, 8);
  for (int k = 0; k < 3; k++) {
    size_t n = 0;
    for (size_t i = 0; i < nrec; i++)
      n += !strcmp(r[i].owner, who[k]);
    CU_ASSERT(n >= 2 && n <= 3);
  }
}

static void test_rounds_converge_to_an_even_spread(void) {
  converge(AG_OWN_BALANCED);
  /* greedy: the first to look takes all 8, the others steal down to 3/3/2 */
  converge(AG_OWN_GREEDY);
}

/* applies one round's claims to the records, as the store would */
static void apply(ag_own_rec_t *r, size_t *nrec, const size_t *claim, size_t nc, const char *self) {
  for (size_t c = 0; c < nc; c++) {
    size_t i = 0;
    while (i < *nrec && strcmp(r[i].pid, P8[claim[c]]))
      i++;
    if (i == *nrec)
      r[(*nrec)++] = rec(P8[claim[c]], self, 0);
    else
      r[i] = rec(P8[claim[c]], self, 0);
  }
}

static void test_claim_all_takes_every_unowned_or_expired_one_at_once(void) {
  /* a and b live on 0-3, "dead" expired on 4-5, 6 released, 7 never claimed */
  ag_own_rec_t r[8] = {rec("0", "a", 1000),
                       rec("1", "a", 1000),
                       rec("2", "b", 1000),
                       rec("3", "b", 1000),
                       rec("4", "dead", EXPIRY + 1000),
                       rec("5", "dead", EXPIRY + 1000),
                       rec("6", "", 10)};
  size_t nrec = 7, claim[8];
  unsigned seed = 5;
  size_t nc = ag_own_balance(r, nrec, P8, 8, "c", NOW, EXPIRY, AG_OWN_CLAIM_ALL, &seed, claim);
  CU_ASSERT_EQUAL_FATAL(nc, 4);
  for (size_t k = 0; k < nc; k++)
    CU_ASSERT_EQUAL(claim[k], 4 + k);
  /* the balanced rule takes one of them per round */
  CU_ASSERT_EQUAL(ag_own_balance(r, nrec, P8, 8, "c", NOW, EXPIRY, AG_OWN_BALANCED, &seed, claim),
                  1);
}

static void test_claim_all_three_agents_first_to_see_expired_wins_none_steals(void) {
  /* all 8 held by an agent that stopped renewing; a, b, c take turns */
  ag_own_rec_t r[8];
  size_t nrec = 8;
  for (int i = 0; i < 8; i++)
    r[i] = rec(P8[i], "dead", EXPIRY + 1000);
  const char *who[3] = {"a", "b", "c"};
  unsigned seed = 9;
  for (int round = 0; round < 9; round++) {
    const char *self = who[round % 3];
    size_t claim[8];
    size_t nc = ag_own_balance(r, nrec, P8, 8, self, NOW, EXPIRY, AG_OWN_CLAIM_ALL, &seed, claim);
    /* the first to look takes all 8; later rounds of anyone renew only their own */
    CU_ASSERT_EQUAL(nc, round % 3 == 0 ? 8u : 0u);
    CU_ASSERT_EQUAL(
        count_owned_by(r, nrec, claim, nc, "b") + count_owned_by(r, nrec, claim, nc, "c"), 0);
    apply(r, &nrec, claim, nc, self);
  }
  CU_ASSERT_EQUAL(nrec, 8);
  for (size_t i = 0; i < nrec; i++)
    CU_ASSERT_STR(r[i].owner, "a");
  /* a stops renewing: once its records expire, the next to look (b) takes all */
  for (size_t i = 0; i < nrec; i++)
    r[i].mtime_ms = NOW - EXPIRY - 1000;
  size_t claim[8];
  size_t nc = ag_own_balance(r, nrec, P8, 8, "b", NOW, EXPIRY, AG_OWN_CLAIM_ALL, &seed, claim);
  CU_ASSERT_EQUAL(nc, 8);
  apply(r, &nrec, claim, nc, "b");
  CU_ASSERT_EQUAL(ag_own_balance(r, nrec, P8, 8, "c", NOW, EXPIRY, AG_OWN_CLAIM_ALL, &seed, claim),
                  0);
}

static void test_claim_all_never_steals_below_fair_share(void) {
  /* "big" holds all 8: the balanced rule steals one, claim-all takes none */
  ag_own_rec_t r[8];
  for (int i = 0; i < 8; i++)
    r[i] = rec(P8[i], "big", 1000);
  for (unsigned s = 0; s < 20; s++) {
    size_t claim[8];
    unsigned seed = s;
    CU_ASSERT_EQUAL(ag_own_balance(r, 8, P8, 8, "me", NOW, EXPIRY, AG_OWN_BALANCED, &seed, claim),
                    1);
    CU_ASSERT_EQUAL(ag_own_balance(r, 8, P8, 8, "me", NOW, EXPIRY, AG_OWN_CLAIM_ALL, &seed, claim),
                    0);
  }
}

static void test_sdk_greedy_fills_its_share_at_once(void) {
  /* a and b live on two each, "dead"'s four expired: a's share is 4 */
  ag_own_rec_t r[8] = {rec("0", "a", 1000),
                       rec("1", "a", 1000),
                       rec("2", "b", 1000),
                       rec("3", "b", 1000),
                       rec("4", "dead", EXPIRY + 1000),
                       rec("5", "dead", EXPIRY + 1000),
                       rec("6", "dead", EXPIRY + 1000),
                       rec("7", "dead", EXPIRY + 1000)};
  for (unsigned s = 0; s < 20; s++) {
    size_t claim[8];
    unsigned seed = s;
    size_t nc = ag_own_balance(r, 8, P8, 8, "a", NOW, EXPIRY, AG_OWN_GREEDY, &seed, claim);
    /* its two to renew, and two distinct expired ones, in one round */
    CU_ASSERT_EQUAL_FATAL(nc, 4);
    CU_ASSERT_EQUAL(count_owned_by(r, 8, claim, nc, "a"), 2);
    CU_ASSERT_EQUAL(count_owned_by(r, 8, claim, nc, "dead"), 2);
    CU_ASSERT_NOT_EQUAL(claim[2], claim[3]);
    seed = s;
    CU_ASSERT_EQUAL(ag_own_balance(r, 8, P8, 8, "a", NOW, EXPIRY, AG_OWN_BALANCED, &seed, claim),
                    3);
  }
  /* a newcomer on an empty store takes all it may (its share is all 8) */
  size_t claim[8];
  unsigned seed = 3;
  CU_ASSERT_EQUAL(ag_own_balance(NULL, 0, P8, 8, "n", NOW, EXPIRY, AG_OWN_GREEDY, &seed, claim), 8);
}

static void test_sdk_greedy_steals_one_when_nothing_is_free(void) {
  ag_own_rec_t r[8];
  for (int i = 0; i < 8; i++)
    r[i] = rec(P8[i], "big", 1000);
  size_t claim[8];
  unsigned seed = 4;
  size_t nc = ag_own_balance(r, 8, P8, 8, "me", NOW, EXPIRY, AG_OWN_GREEDY, &seed, claim);
  CU_ASSERT_EQUAL_FATAL(nc, 1);
  CU_ASSERT_EQUAL(count_owned_by(r, 8, claim, nc, "big"), 1);
}

static void test_record_names_match_ids_in_any_case(void) {
  /* listed names are lower-cased blob names; a lease's query-set id need not be */
  const char *ids[] = {"Orders-Windows"};
  ag_own_rec_t r[1] = {rec("orders-windows", "me", 1000)};
  size_t claim[1];
  unsigned seed = 1;
  CU_ASSERT_EQUAL_FATAL(
      ag_own_balance(r, 1, ids, 1, "me", NOW, EXPIRY, AG_OWN_CLAIM_ALL, &seed, claim), 1);
  CU_ASSERT_EQUAL(claim[0], 0);
  /* someone else's live lease: nothing to claim, in either rule */
  strcpy(r[0].owner, "other");
  CU_ASSERT_EQUAL(ag_own_balance(r, 1, ids, 1, "me", NOW, EXPIRY, AG_OWN_CLAIM_ALL, &seed, claim),
                  0);
  CU_ASSERT_EQUAL(ag_own_balance(r, 1, ids, 1, "me", NOW, EXPIRY, AG_OWN_BALANCED, &seed, claim),
                  0);
}

static void test_folder_must_be_one_plain_segment(void) {
  const char *bad[] = {
      "a/b", "checkpoint", "CheckPoint",
      "..",  "sp ace",     "0123456789012345678901234567890123456789012345678901234567890123"};
  const char *good[] = {NULL, "", "ehdelta-lease", "Ownership"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad + sizeof good / sizeof *good; i++) {
    bool is_bad = i < sizeof bad / sizeof *bad;
    st_store_t *s = NULL;
    ed_err_t err = {0};
    char dir[] = "/tmp/ed-owner-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    CU_ASSERT_EQUAL_FATAL(st_open(dir, NULL, &s, &err), ED_OK);
    ag_own_opts_t o = {.ns = "ns.example", .hub = "hub", .group = "$Default", .owner_id = "me"};
    o.folder = is_bad ? bad[i] : good[i - sizeof bad / sizeof *bad];
    ag_own_t *own = NULL;
    ed_code_t rc = ag_own_new(s, &o, &own, &err);
    if (is_bad) {
      CU_ASSERT_EQUAL(rc, ED_E_CONFIG);
      CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "expected one path segment"));
      CU_ASSERT_PTR_NULL(own);
    } else {
      CU_ASSERT_EQUAL(rc, ED_OK);
    }
    ag_own_free(own);
    rmdir(dir);
  }
}

static void test_inconsistent_timings_are_refused(void) {
  st_store_t *s = NULL;
  ed_err_t err = {0};
  char dir[] = "/tmp/ed-owner-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  CU_ASSERT_EQUAL_FATAL(st_open(dir, NULL, &s, &err), ED_OK);
  ag_own_opts_t o = {.ns = "ns.example",
                     .hub = "hub",
                     .group = "$Default",
                     .owner_id = "me",
                     .expiry_us = 10000000,
                     .renew_us = 8000000,
                     .margin_us = 3000000};
  ag_own_t *own = NULL;
  CU_ASSERT_EQUAL(ag_own_new(s, &o, &own, &err), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "below the ownership expiry"));
  CU_ASSERT_PTR_NULL(own);
  rmdir(dir);
}

static void test_owner_ids_must_be_printable_ascii(void) {
  const char *bad[] = {"caf\xc3\xa9", "two\nlines", "tab\there"};
  for (size_t i = 0; i < 3; i++) {
    st_store_t *s = NULL;
    ed_err_t err = {0};
    char dir[] = "/tmp/ed-owner-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    CU_ASSERT_EQUAL_FATAL(st_open(dir, NULL, &s, &err), ED_OK);
    ag_own_opts_t o = {.ns = "ns.example", .hub = "hub", .group = "$Default", .owner_id = bad[i]};
    ag_own_t *own = NULL;
    CU_ASSERT_EQUAL(ag_own_new(s, &o, &own, &err), ED_E_CONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "printable ASCII"));
    rmdir(dir);
  }
}

static void test_local_store_is_refused_with_the_expected_form(void) {
  st_store_t *s = NULL;
  ed_err_t err = {0};
  char dir[] = "/tmp/ed-owner-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  CU_ASSERT_EQUAL_FATAL(st_open(dir, NULL, &s, &err), ED_OK);
  ag_own_opts_t o = {.ns = "ns.example", .hub = "hub", .group = "$Default"};
  ag_own_t *own = NULL;
  CU_ASSERT_EQUAL_FATAL(ag_own_new(s, &o, &own, &err), ED_OK);
  CU_ASSERT_EQUAL(strlen(ag_own_id(own)), 36);
  ag_own_rec_t *r = NULL;
  size_t n = 0;
  CU_ASSERT_EQUAL(ag_own_list(own, &r, &n, &err), ED_E_UNSUPPORTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "Azure Blob container"));
  ag_own_free(own);
  rmdir(dir);
}

/* Clock skew: owner L sent its last successful claim at S (its proof lasts
 * until S + expiry - margin on its own monotonic clock); the service stamps
 * Last-Modified in whole seconds, at worst 999 ms before S. Host H, whose
 * wall clock is ahead by skew, balances at every moment L may still read.
 * Up to the margin of skew H never takes L's partitions (greedy or balanced);
 * beyond it, it may: the tolerance is the margin, no more. */
static size_t claims_of_live(int64_t skew_ms, ag_own_mode_t mode) {
  bool all = mode == AG_OWN_CLAIM_ALL; /* L holds every partition */
  const int64_t margin = EXPIRY / 4, limit = EXPIRY - margin;
  const int64_t S = NOW + 999; /* Last-Modified: NOW, the worst truncation */
  size_t worst = 0;
  for (int64_t t = S;; t += 250) {
    if (t >= S + limit)
      t = S + limit - 1; /* the last moment L reads */
    ag_own_rec_t r[8];
    for (int i = 0; i < 8; i++) {
      r[i] = rec(P8[i], i < 4 || all ? "L" : "H", 0);
      r[i].mtime_ms = i < 4 || all ? NOW : t; /* H's own: just renewed */
    }
    size_t claim[8];
    unsigned seed = 3;
    size_t nc = ag_own_balance(r, 8, P8, 8, "H", t + skew_ms, EXPIRY, mode, &seed, claim);
    size_t took = count_owned_by(r, 8, claim, nc, "L");
    worst = took > worst ? took : worst;
    if (t == S + limit - 1)
      break;
  }
  return worst;
}

static void test_clock_skew_up_to_the_margin_takes_no_live_claim(void) {
  const int64_t margin = EXPIRY / 4;
  CU_ASSERT_EQUAL(claims_of_live(0, AG_OWN_BALANCED), 0);
  CU_ASSERT_EQUAL(claims_of_live(margin, AG_OWN_BALANCED), 0);
  CU_ASSERT_EQUAL(claims_of_live(margin, AG_OWN_GREEDY), 0);
  CU_ASSERT_EQUAL(claims_of_live(margin, AG_OWN_CLAIM_ALL), 0);
  CU_ASSERT_EQUAL(claims_of_live(-margin, AG_OWN_CLAIM_ALL), 0); /* behind: only later */
  /* the bound is real: a second beyond it, L's claims look expired while L reads */
  CU_ASSERT(claims_of_live(margin + 1000, AG_OWN_CLAIM_ALL) > 0);
  CU_ASSERT(claims_of_live(margin + 1000, AG_OWN_BALANCED) > 0);
  CU_ASSERT(claims_of_live(margin + 1000, AG_OWN_GREEDY) > 0);
}

static const cu_case_t cases[] = {
    CU_CASE(test_clock_skew_up_to_the_margin_takes_no_live_claim),
    CU_CASE(test_empty_store_claims_one_partition_per_round),
    CU_CASE(test_own_live_claims_are_renewed),
    CU_CASE(test_expired_and_released_records_are_claimable),
    CU_CASE(test_steals_from_the_owner_with_the_most_below_fair_share),
    CU_CASE(test_no_steal_at_fair_share),
    CU_CASE(test_steal_from_above_the_ceiling_at_the_floor),
    CU_CASE(test_owner_at_ceiling_claims_nothing_new),
    CU_CASE(test_rounds_converge_to_an_even_spread),
    CU_CASE(test_claim_all_takes_every_unowned_or_expired_one_at_once),
    CU_CASE(test_claim_all_three_agents_first_to_see_expired_wins_none_steals),
    CU_CASE(test_claim_all_never_steals_below_fair_share),
    CU_CASE(test_sdk_greedy_fills_its_share_at_once),
    CU_CASE(test_sdk_greedy_steals_one_when_nothing_is_free),
    CU_CASE(test_record_names_match_ids_in_any_case),
    CU_CASE(test_folder_must_be_one_plain_segment),
    CU_CASE(test_inconsistent_timings_are_refused),
    CU_CASE(test_owner_ids_must_be_printable_ascii),
    CU_CASE(test_local_store_is_refused_with_the_expected_form),
    CU_END,
};
ED_SUITE(ag_owner, cases)
