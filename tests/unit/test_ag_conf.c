#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/conf.h"
#include "agent/run_int.h"
#include "eventhubs/client.h"
#include "common/opt.h"
#include "stream/decode.h"
#include "tests/unit/cu.h"

/* The tutorial's whole job (Steps 3.3-3.4, 4.1, 7.1, 7.2) in one file. */
static const char tutorial[] =
    "# the tutorial\n"
    "[source]\n"
    "hub = transactions-stream\n"
    "consumer_group = $Default\n"
    "starting_position = earliest\n"
    "partition_position = 1 = seq:42\n"
    "\n"
    "[schema]\n"
    "columns = transaction_id STRING, customer_id STRING, amount DOUBLE, category STRING, "
    "timestamp TIMESTAMP, location STRING, payment_method STRING\n"
    "metadata = enqueued_time AS ingestion_time, offset, sequence_number AS sequenceNumber\n"
    "derive = processing_time = current_timestamp()\n"
    "derive = processing_date = to_date(timestamp)\n"
    "derive = amount_usd = amount\n"
    "[sink raw]\n"
    "path = /tmp/t/raw\n"
    "partition_by = processing_date\n"
    "trigger = available-now\n"
    "[sink by_category]\n"
    "path = /tmp/t/by-category\n"
    "window = timestamp, 5 minutes\n"
    "group_by = category\n"
    "aggregate = count(*) AS txn_count, sum(amount) AS total_amount, avg(amount) AS avg_amount\n"
    "watermark = 10 minutes\n"
    "trigger = 1 minute\n"
    "[sink sliding]\n"
    "type = console\n"
    "window = timestamp, 10 minutes, 5 minutes\n"
    "group_by = location\n"
    "aggregate = count(*) AS txn_count, sum(amount) AS revenue\n"
    "watermark = 10 minutes\n"
    "output_mode = complete\n"
    "[dead_letter]\n"
    "path = /tmp/t/dead\n";

static void test_parses_the_tutorial(void) {
  ag_conf_t c;
  char *problems;
  ed_err_t e = {0};
  ed_code_t rc = ag_conf_parse("t.conf", tutorial, &c, &problems, &e);
  if (rc)
    fprintf(stderr, "%s", problems);
  CU_ASSERT_EQUAL_FATAL(rc, ED_OK);
  CU_ASSERT_STR(c.source.hub, "transactions-stream");
  CU_ASSERT_STR(c.source.consumer_group, "$Default");
  CU_ASSERT_EQUAL(c.source.retention_gap_policy, AG_GAP_FAIL);
  CU_ASSERT_STR(c.source.starting_position, "earliest");
  CU_ASSERT_STR(c.source.partition_position[0], "1 = seq:42");
  CU_ASSERT_TRUE(c.source.tls);
  CU_ASSERT_EQUAL(c.source.prefetch, 300);
  CU_ASSERT_STR(c.schema.derive[1], "processing_date = to_date(timestamp)");
  CU_ASSERT_PTR_NULL(c.schema.derive[3]);
  CU_ASSERT_EQUAL_FATAL(c.nsinks, 3);
  const ag_sink_t *raw = &c.sinks[0];
  CU_ASSERT_STR(raw->name, "raw");
  CU_ASSERT_STR(raw->query_id, "ehdelta-raw");
  CU_ASSERT_TRUE(raw->available_now);
  CU_ASSERT_EQUAL(raw->kind, AG_SINK_DELTA);
  CU_ASSERT_EQUAL(raw->max_batch_events, 1000000);
  const ag_sink_t *w = &c.sinks[1];
  CU_ASSERT_STR(w->window_column, "timestamp");
  CU_ASSERT_STR(w->watermark_column, "timestamp");
  CU_ASSERT_EQUAL(w->mode, AG_OUT_APPEND);
  CU_ASSERT_EQUAL(w->trigger_us, 60 * 1000000LL);
  CU_ASSERT_EQUAL(w->window_us, 300 * 1000000LL);
  CU_ASSERT_EQUAL(w->slide_us, 300 * 1000000LL);
  CU_ASSERT_EQUAL(w->watermark_us, 600 * 1000000LL);
  const ag_sink_t *s = &c.sinks[2];
  CU_ASSERT_EQUAL(s->kind, AG_SINK_CONSOLE);
  CU_ASSERT_EQUAL(s->window_us, 600 * 1000000LL);
  CU_ASSERT_EQUAL(s->slide_us, 300 * 1000000LL);
  CU_ASSERT_EQUAL(s->mode, AG_OUT_COMPLETE);
  CU_ASSERT_STR(c.dead_letter.path, "/tmp/t/dead");
  ag_conf_free(&c);
  ag_conf_free(&c); /* idempotent on a freed conf */
}

static const char broken[] = "[source]\n"                         /* 1 */
                             "hub = h\n"                          /* 2 */
                             "starting_position = yesterday\n"    /* 3 */
                             "colour = blue\n"                    /* 4 */
                             "[schema]\n"                         /* 5 */
                             "columns = a INT\n"                  /* 6 */
                             "bad_event_mode = permissive\n"      /* 7 */
                             "just words\n"                       /* 8 */
                             "[sink w]\n"                         /* 9 */
                             "window = timestamp, five minutes\n" /* 10 */
                             "aggregate = count(*) AS n\n"        /* 11 */
                             "trigger = often\n"                  /* 12 */
                             "max_batch_events = 0\n"             /* 13 */
                             "[nonsense]\n"                       /* 14 */
                             "[sink w]\n";                        /* 15 */

static void test_reports_every_problem_with_its_line(void) {
  ag_conf_t c;
  char *problems = NULL;
  ed_err_t e = {0};
  CU_ASSERT_EQUAL(ag_conf_parse("b.conf", broken, &c, &problems, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL_FATAL(problems);
  static const char *const want[] = {
      "b.conf:4: unknown key 'colour'",
      "b.conf:8: 'just words': expected key = value",
      "b.conf:13: ",
      "b.conf:14: unknown section [nonsense]",
      "b.conf:15: [sink w] defined twice (first at line 9)",
      "b.conf:3: [source] starting_position: ",
      "b.conf:12: [sink w] trigger 'often'",
      "b.conf:10: [sink w] window 'timestamp, five minutes'",
      "b.conf:9: [sink w] a delta sink needs path",
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    if (!strstr(problems, want[i]))
      fprintf(stderr, "missing '%s' in:\n%s", want[i], problems);
    CU_ASSERT_PTR_NOT_NULL(strstr(problems, want[i]));
  }
  CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "b.conf: 12 problems"));
  if (!strstr(e.msg, "b.conf: 12 problems"))
    fprintf(stderr, "%s\n%s", e.msg, problems);
  free(problems);
  ag_conf_free(&c);
}

/* constraint_violation: fail or dead-letter, the latter only for delta sinks
 * of rows and with a [dead_letter] table. */
static void test_constraint_violation_policy(void) {
  static const struct {
    const char *sink;
    bool dead_letter_section;
    const char *problem; /* NULL: valid */
  } cases[] = {
      {"path = /t\nconstraint_violation = dead-letter\n", true, NULL},
      {"path = /t\n", false, NULL},
      {"path = /t\nconstraint_violation = skip\n", true, "expected fail or dead-letter"},
      {"path = /t\nconstraint_violation = dead-letter\n", false, "needs a [dead_letter] path"},
      {"path = /t\nconstraint_violation = dead-letter\nwindow = ts, 5 minutes\n"
       "aggregate = count(*) AS n\nwatermark = ts, 1 minute\n",
       true, "is for delta sinks of rows"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char text[1024];
    snprintf(text, sizeof text,
             "[source]\nhub = h\n[schema]\ncolumns = a INT, ts TIMESTAMP\n"
             "bad_event_mode = permissive\n[sink raw]\n%s%s",
             cases[i].sink, cases[i].dead_letter_section ? "[dead_letter]\npath = /d\n" : "");
    ag_conf_t c;
    char *problems = NULL;
    ed_err_t e = {0};
    ed_code_t rc = ag_conf_parse("v.conf", text, &c, &problems, &e);
    CU_ASSERT_EQUAL(rc, cases[i].problem ? ED_E_CONFIG : ED_OK);
    if (cases[i].problem) {
      CU_ASSERT_PTR_NOT_NULL(problems && strstr(problems, cases[i].problem));
    } else if (rc) {
      fprintf(stderr, "case %zu: %s", i, problems ? problems : e.msg);
    }
    if (!rc) {
      CU_ASSERT_EQUAL(c.sinks[0].violation_dead_letter, strstr(cases[i].sink, "dead") != NULL);
    }
    free(problems);
    ag_conf_free(&c);
  }
}

/* trigger = continuous closes a batch early only once the agent's CPU since
 * the last close is ten times the last commit's: a commit is then at most a
 * tenth of the work (before it, back-to-back commits of ~40 events cost 4x
 * the CPU per event of a 1-second trigger; at five times, 1.3-1.45x). */
static void test_continuous_commit_paid(void) {
  CU_ASSERT_TRUE(ag_run_commit_paid(0, 0)); /* no commit yet: the first batch goes */
  CU_ASSERT_FALSE(ag_run_commit_paid(3999, 400));
  CU_ASSERT_TRUE(ag_run_commit_paid(4000, 400));
  CU_ASSERT_FALSE(ag_run_commit_paid(9999, 1000));
  CU_ASSERT_TRUE(ag_run_commit_paid(10000, 1000));
  CU_ASSERT_EQUAL(CONTINUOUS_AMORTISE, 10);
  CU_ASSERT_EQUAL(CONTINUOUS_WAIT_US, 100000);
}

/* trigger = continuous[, min DURATION] and the compaction keys: what they
 * resolve to, and a clear problem for what they are not. */
static void test_continuous_and_compaction(void) {
  static const struct {
    const char *sink;
    const char *problem; /* NULL: valid */
    bool continuous;
    int64_t trigger_us;
  } cases[] = {
      {"path = /t\ntrigger = continuous\n", NULL, true, 0},
      {"path = /t\ntrigger = continuous, min 100 ms\n", NULL, true, 100000},
      {"path = /t\ntrigger = continuous,min 2 seconds\n", NULL, true, 2000000},
      {"path = /t\ntrigger = 1 second\n", NULL, false, 1000000},
      {"path = /t\ntrigger = continuous soon\n", "expected continuous or", false, 0},
      {"path = /t\ntrigger = continuous, 100 ms\n", "expected continuous or", false, 0},
      {"path = /t\ntrigger = continuous, min never\n", "expected continuous or", false, 0},
      {"path = /t\ntrigger = continuously\n", "expected a duration", false, 0},
      {"type = console\ncompaction = true\n", "expected a delta sink", false, 0},
      {"path = /t\ncompaction_files = 0\n", "compaction_files", false, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char text[1024];
    snprintf(text, sizeof text,
             "[source]\nhub = h\n[schema]\ncolumns = a INT\n[sink raw]\n%s"
             "compaction_interval = 5 seconds\n",
             cases[i].sink);
    ag_conf_t c;
    char *problems = NULL;
    ed_err_t e = {0};
    ed_code_t rc = ag_conf_parse("t.conf", text, &c, &problems, &e);
    CU_ASSERT_EQUAL(rc, cases[i].problem ? ED_E_CONFIG : ED_OK);
    if (cases[i].problem) {
      CU_ASSERT_PTR_NOT_NULL(problems && strstr(problems, cases[i].problem));
      if (!problems || !strstr(problems, cases[i].problem))
        fprintf(stderr, "case %zu: %s\n", i, problems ? problems : e.msg);
    } else if (rc) {
      fprintf(stderr, "case %zu: %s", i, problems ? problems : e.msg);
    } else {
      CU_ASSERT_EQUAL(c.sinks[0].continuous, cases[i].continuous);
      CU_ASSERT_EQUAL(c.sinks[0].trigger_us, cases[i].trigger_us);
      CU_ASSERT_EQUAL(c.sinks[0].compaction, false);
      CU_ASSERT_EQUAL(c.sinks[0].compaction_files, 10);
      CU_ASSERT_EQUAL(c.sinks[0].compaction_interval_us, 5000000);
    }
    free(problems);
    ag_conf_free(&c);
  }
}

/* Every key of every section table is documented in man/ehdelta.conf.5 and
 * the page documents no key the tables lack: the tables are the truth. */
static void test_man_page_matches_tables(void) {
  const char *top = getenv("EHDELTA_TOP_SRCDIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/man/ehdelta.conf.5", top ? top : ".");
  FILE *f = fopen(path, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  static char page[1 << 17];
  size_t n = fread(page, 1, sizeof page - 1, f);
  fclose(f);
  page[n] = 0;
  /* Documented keys are ".TP\n.B section.key" items. */
  char want[256];
  static const char *const secs[] = {"source", "schema", "storage", "sink", "dead_letter"};
  for (size_t s = 0; s < sizeof secs / sizeof *secs; s++)
    for (const ed_opt_t *o = ag_conf_section_keys(secs[s]); o->name; o++) {
      snprintf(want, sizeof want, "\n.B %s.%s\n", secs[s], o->name);
      if (!strstr(page, want))
        fprintf(stderr, "ehdelta.conf.5 lacks key %s.%s\n", secs[s], o->name);
      CU_ASSERT_PTR_NOT_NULL(strstr(page, want));
    }
  /* A key with a fixed set of values names each of them in its paragraph
   * (roff writes '-' as '\-'). */
  for (size_t s = 0; s < sizeof secs / sizeof *secs; s++)
    for (const ed_opt_t *o = ag_conf_section_keys(secs[s]); o->name; o++) {
      if (o->type != ED_OPT_ENUM)
        continue;
      snprintf(want, sizeof want, "\n.B %s.%s\n", secs[s], o->name);
      const char *par = strstr(page, want);
      if (!par)
        continue;
      const char *end = strstr(par + 1, "\n.TP\n");
      for (const char *const *nm = o->names; *nm; nm++) {
        char esc[128];
        size_t k = 0;
        for (const char *c = *nm; *c && k < sizeof esc - 3; c++) {
          if (*c == '-')
            esc[k++] = '\\';
          esc[k++] = *c;
        }
        esc[k] = 0;
        const char *at = strstr(par, esc);
        bool named = at && (!end || at < end);
        if (!named)
          fprintf(stderr, "ehdelta.conf.5: %s.%s does not name its value '%s'\n", secs[s], o->name,
                  *nm);
        CU_ASSERT_TRUE(named);
      }
    }
  for (char *p = strstr(page, "\n.TP\n.B "); p; p = strstr(p + 1, "\n.TP\n.B ")) {
    char sec[64], key[64];
    if (sscanf(p + 8, "%63[a-z_].%63[a-z_]", sec, key) != 2)
      continue;
    const ed_opt_t *keys = ag_conf_section_keys(sec);
    bool found = keys && ed_opt_find(keys, key);
    if (!found)
      fprintf(stderr, "ehdelta.conf.5 documents unknown key %s.%s\n", sec, key);
    CU_ASSERT_TRUE(found);
  }
}

/* Keys with a fixed set of values are declared once, with their names: any
 * case and '-'/'_' spelling of a name is that value (Spark's outputMode takes
 * "Complete"); anything else is refused naming every allowed value. */
static void test_fixed_value_keys(void) {
  static const char good[] = "[source]\nretention_gap_policy = Skip_To_Earliest\n"
                             "[schema]\ncolumns = ts TIMESTAMP, n INT\nbad_event_mode = FailFast\n"
                             "[storage]\nauth = Managed-Identity\n"
                             "[sink w]\ntype = Console\nwindow = 1 minute\n"
                             "aggregate = count(*) AS c\noutput_mode = Complete\n";
  ag_conf_t c;
  char *problems = NULL;
  ed_err_t e = {0};
  ed_code_t rc = ag_conf_parse("g.conf", good, &c, &problems, &e);
  if (rc)
    fprintf(stderr, "%s", problems);
  CU_ASSERT_EQUAL_FATAL(rc, ED_OK);
  CU_ASSERT_EQUAL(c.source.retention_gap_policy, AG_GAP_SKIP_TO_EARLIEST);
  CU_ASSERT_EQUAL(c.schema.bad_event_mode, SM_BAD_FAIL_FAST);
  CU_ASSERT_EQUAL(c.storage.auth, AG_AUTH_MANAGED_ID);
  CU_ASSERT_EQUAL(c.sinks[0].kind, AG_SINK_CONSOLE);
  CU_ASSERT_EQUAL(c.sinks[0].mode, AG_OUT_COMPLETE);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ag_conf_print(f, &c);
  fclose(f);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nretention_gap_policy = skip-to-earliest\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nbad_event_mode = fail-fast\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nauth = managed-identity\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "\ntype = console\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "\noutput_mode = complete\n"));
  free(text);
  ag_conf_free(&c);
  static const char bad[] = "[source]\nretention_gap_policy = ignore\n"                 /* 2 */
                            "[schema]\ncolumns = ts TIMESTAMP\nbad_event_mode = drop\n" /* 5 */
                            "[storage]\nauth = password\n"                              /* 7 */
                            "[sink w]\ntype = kafka\noutput_mode = upsert\n";           /* 9, 10 */
  CU_ASSERT_EQUAL(ag_conf_parse("b.conf", bad, &c, &problems, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL_FATAL(problems);
  static const char *const want[] = {
      "b.conf:2: [source] retention_gap_policy 'ignore': expected fail or skip-to-earliest\n",
      "b.conf:5: [schema] bad_event_mode 'drop': expected dead-letter, permissive or fail-fast\n",
      "b.conf:7: [storage] auth 'password': expected shared-key, sas, client-secret, "
      "managed-identity, azure-cli, none, workload-identity or default\n",
      "b.conf:9: [sink w] type 'kafka': expected delta or console\n",
      "b.conf:10: [sink w] output_mode 'upsert': expected append, update or complete\n",
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    if (!strstr(problems, want[i]))
      fprintf(stderr, "missing '%s' in:\n%s", want[i], problems);
    CU_ASSERT_PTR_NOT_NULL(strstr(problems, want[i]));
  }
  free(problems);
  ag_conf_free(&c);
}

/* [source] auth picks SAS or an Entra ID credential; its keys land in the
 * source, and a method the client does not know is refused naming each. */
static void test_source_entra_keys(void) {
  static const char good[] = "[source]\nauth = Workload_Identity\nnamespace = ns.example\n"
                             "tenant_id = t\nclient_id = c\nfederated_token_file = /var/t\n"
                             "[schema]\ncolumns = n INT\n[sink raw]\npath = /tmp/x\n";
  ag_conf_t c;
  char *problems = NULL;
  ed_err_t e = {0};
  ed_code_t rc = ag_conf_parse("g.conf", good, &c, &problems, &e);
  if (rc)
    fprintf(stderr, "%s", problems);
  CU_ASSERT_EQUAL_FATAL(rc, ED_OK);
  CU_ASSERT_STR(eh_auth_names[c.source.auth], "workload-identity");
  CU_ASSERT_EQUAL(c.source.auth - 1, AU_CRED_WORKLOAD_ID);
  CU_ASSERT_STR(c.source.tenant_id, "t");
  CU_ASSERT_STR(c.source.client_id, "c");
  CU_ASSERT_STR(c.source.federated_token_file, "/var/t");
  ag_conf_free(&c);
  static const char dflt[] = "[schema]\ncolumns = n INT\n[sink raw]\npath = /tmp/x\n";
  CU_ASSERT_EQUAL_FATAL(ag_conf_parse("d.conf", dflt, &c, &problems, &e), ED_OK);
  CU_ASSERT_EQUAL(c.source.auth, EH_AUTH_SAS);
  ag_conf_free(&c);
  static const char bad[] = "[source]\nauth = password\n[schema]\ncolumns = n INT\n"
                            "[sink raw]\npath = /tmp/x\n";
  CU_ASSERT_EQUAL(ag_conf_parse("b.conf", bad, &c, &problems, &e), ED_E_CONFIG);
  CU_ASSERT_PTR_NOT_NULL(problems &&
                         strstr(problems, "b.conf:2: [source] auth 'password': expected "
                                          "sas, client-secret, workload-identity, "
                                          "managed-identity, azure-cli or default\n"));
  free(problems);
  ag_conf_free(&c);
}

static const cu_case_t cases[] = {
    CU_CASE(test_parses_the_tutorial),
    CU_CASE(test_reports_every_problem_with_its_line),
    CU_CASE(test_constraint_violation_policy),
    CU_CASE(test_continuous_and_compaction),
    CU_CASE(test_continuous_commit_paid),
    CU_CASE(test_man_page_matches_tables),
    CU_CASE(test_fixed_value_keys),
    CU_CASE(test_source_entra_keys),
    CU_END,
};
ED_SUITE(ag_conf, cases)
