/* owner_tool: drives agent/owner.c against a real Blob container (Azurite in
 * tests/interop/test_owner.py), one process per simulated agent.
 *   owner_tool [--folder=F] [--greedy] [--names=A,B,..] URL NS HUB GROUP OWNER list
 *   owner_tool URL NS HUB GROUP OWNER checkpoints
 *   owner_tool URL NS HUB GROUP OWNER checkpoint PID OFFSET SEQ
 *   owner_tool URL NS HUB GROUP OWNER agent NPART EXPIRY_MS RENEW_MS MARGIN_MS
 * --folder: the records' folder (ag_own_opts_t.folder; default "ownership").
 * --greedy: the greedy balance (ag_own_opts_t.greedy). --names: the agent's
 * record names instead of "0".."NPART-1" (a lease's query-set id); NPART must
 * equal their count, and its lines still name them by index.
 * OWNER "-" means a fresh id. "agent" balances partitions 0..NPART-1 until
 * SIGTERM (then releases them), rounds on one thread and the proof checked on
 * another, and prints one line per change of its proof:
 *   own PID WALL_MS KIND      (a claim sent no earlier than WALL_MS succeeded;
 *                              KIND: steal or free)
 *   drop PID WALL_MS          (stopped: lost, unproven or released)
 *   tick WALL_MS owned=N claims=C steals=S losses=L   (a round that began at WALL_MS)
 * Storage credentials come from the environment (store.h's AUTO order). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/owner.h"
#include "common/time.h"

/* set by the signal handler, read by both threads */
static atomic_int g_stop;
static void on_term(int sig) {
  (void)sig;
  g_stop = 1;
}

static int fail(const ed_err_t *e) {
  fprintf(stderr, "owner_tool: %s\n", e->msg);
  return 1;
}

static void nap_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The agent as the run loop will be: rounds on their own thread (they may
 * wait on storage for long), the proof checked every 20 ms on the main one. */
typedef struct {
  ag_own_t *o;
  char **pids;
  int np;
  bool *was;
  pthread_mutex_t mu; /* was[] and stdout */
} agent_t;

static void *rounds(void *arg) {
  agent_t *a = arg;
  while (!g_stop) {
    int64_t wall_before = ed_time_now_us() / 1000;
    ed_err_t e = {0};
    if (ag_own_tick(a->o, (const char *const *)a->pids, (size_t)a->np, &e))
      fprintf(stderr, "owner_tool: round: %s\n", e.msg);
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < a->np; i++)
      if (!a->was[i] && ag_own_owns(a->o, (size_t)i)) {
        /* the claim was sent no earlier than this round began */
        printf("own %d %lld %s\n", i, (long long)wall_before,
               ag_own_stolen(a->o, (size_t)i) ? "steal" : "free");
        a->was[i] = true;
      }
    ag_own_stats_t st;
    ag_own_stats(a->o, &st);
    printf("tick %lld owned=%zu claims=%llu steals=%llu losses=%llu\n", (long long)wall_before,
           st.owned, (unsigned long long)st.claims, (unsigned long long)st.steals,
           (unsigned long long)st.losses);
    fflush(stdout);
    pthread_mutex_unlock(&a->mu);
    int64_t until = ed_time_mono_us() + ag_own_renew_us(a->o);
    while (!g_stop && ed_time_mono_us() < until)
      nap_ms(20);
  }
  return NULL;
}

static void report_drops(agent_t *a, size_t *gone) {
  size_t ng = ag_own_expired(a->o, gone);
  pthread_mutex_lock(&a->mu);
  for (size_t k = 0; k < ng; k++)
    if (a->was[gone[k]]) {
      printf("drop %zu %lld\n", gone[k], (long long)(ed_time_now_us() / 1000));
      a->was[gone[k]] = false;
    }
  fflush(stdout);
  pthread_mutex_unlock(&a->mu);
}

/* names: comma-separated record names, or NULL for "0".."np-1" (borrowed) */
static int agent(ag_own_t *o, int np, const char *names, ed_err_t *err) {
  agent_t a = {.o = o, .np = np};
  a.pids = calloc((size_t)np, sizeof *a.pids);
  a.was = calloc((size_t)np, sizeof *a.was);
  size_t *gone = calloc((size_t)np, sizeof *gone);
  pthread_mutex_init(&a.mu, NULL);
  for (int i = 0; i < np; i++) {
    if (names) {
      size_t len = strcspn(names, ",");
      a.pids[i] = strndup(names, len);
      names += len + (names[len] == ',');
    } else {
      a.pids[i] = malloc(16);
      snprintf(a.pids[i], 16, "%d", i);
    }
  }
  struct sigaction sa = {0};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  printf("id %s\n", ag_own_id(o));
  fflush(stdout);
  pthread_t t;
  pthread_create(&t, NULL, rounds, &a);
  while (!g_stop) {
    nap_ms(20);
    report_drops(&a, gone);
  }
  pthread_join(t, NULL);
  report_drops(&a, gone);
  /* stop reading first, then give the records up */
  for (int i = 0; i < np; i++)
    if (a.was[i])
      printf("drop %d %lld\n", i, (long long)(ed_time_now_us() / 1000));
  fflush(stdout);
  ed_code_t rc = ag_own_release_all(o, err);
  for (int i = 0; i < np; i++)
    free(a.pids[i]);
  free(a.pids);
  free(a.was);
  free(gone);
  pthread_mutex_destroy(&a.mu);
  return rc ? fail(err) : 0;
}

/* how many comma-separated names s holds */
static int count_names(const char *s) {
  int n = 1;
  for (; *s; s++)
    n += *s == ',';
  return n;
}

int main(int argc, char **argv) {
  const char *folder = NULL, *names = NULL;
  bool greedy = false;
  while (argc > 1 && !strncmp(argv[1], "--", 2)) {
    if (!strncmp(argv[1], "--folder=", 9))
      folder = argv[1] + 9;
    else if (!strcmp(argv[1], "--greedy"))
      greedy = true;
    else if (!strncmp(argv[1], "--names=", 8) && argv[1][8])
      names = argv[1] + 8;
    else
      break;
    argv++;
    argc--;
  }
  if (argc < 7) {
    fprintf(stderr, "usage: owner_tool [--folder=F] [--greedy] [--names=A,B] URL NS HUB GROUP "
                    "OWNER list|checkpoints|checkpoint PID OFFSET SEQ|agent NPART EXPIRY_MS "
                    "RENEW_MS MARGIN_MS\n");
    return 2;
  }
  ed_err_t err = {0};
  st_store_t *s = NULL;
  if (st_open(argv[1], NULL, &s, &err))
    return fail(&err);
  const char *cmd = argv[6];
  ag_own_opts_t oo = {.ns = argv[2],
                      .hub = argv[3],
                      .group = argv[4],
                      .owner_id = strcmp(argv[5], "-") ? argv[5] : NULL,
                      .folder = folder,
                      .greedy = greedy};
  if (!strcmp(cmd, "agent") && argc >= 11) {
    oo.expiry_us = atoll(argv[8]) * 1000;
    oo.renew_us = atoll(argv[9]) * 1000;
    oo.margin_us = atoll(argv[10]) * 1000;
  }
  ag_own_t *o = NULL;
  if (ag_own_new(s, &oo, &o, &err))
    return fail(&err);
  int rc = 0;
  if (!strcmp(cmd, "list")) {
    ag_own_rec_t *r = NULL;
    size_t n = 0;
    if (ag_own_list(o, &r, &n, &err))
      rc = fail(&err);
    for (size_t i = 0; i < n; i++)
      printf("%s %s\n", r[i].pid, r[i].owner[0] ? r[i].owner : "-");
    free(r);
  } else if (!strcmp(cmd, "checkpoints")) {
    ag_own_ckpt_t *c = NULL;
    size_t n = 0;
    if (ag_own_list_checkpoints(o, &c, &n, &err))
      rc = fail(&err);
    for (size_t i = 0; i < n; i++)
      printf("%s %lld %lld\n", c[i].pid, (long long)c[i].offset, (long long)c[i].seq);
    free(c);
  } else if (!strcmp(cmd, "checkpoint") && argc >= 10) {
    if (ag_own_checkpoint(o, argv[7], atoll(argv[8]), atoll(argv[9]), &err))
      rc = fail(&err);
  } else if (!strcmp(cmd, "agent") && argc >= 11 && names && count_names(names) != atoi(argv[7])) {
    fprintf(stderr, "owner_tool: --names gives %d names; expected NPART (%s)\n", count_names(names),
            argv[7]);
    rc = 2;
  } else if (!strcmp(cmd, "agent") && argc >= 11) {
    rc = agent(o, atoi(argv[7]), names, &err);
  } else {
    fprintf(stderr, "owner_tool: unknown command or missing arguments: %s\n", cmd);
    rc = 2;
  }
  ag_own_free(o);
  return rc;
}
