/* ehdelta inspect: show what is inside a file or table. A path ending in
 * .parquet is a Parquet file: its footer (schema, row groups, encodings,
 * codecs, statistics) as text or --json, formatted by src/parquet/inspect.c.
 * Anything else is a Delta table: inspect_table() is the one place the Delta
 * table inspector plugs in. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>

#include "agent/sink.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/time.h"
#include "delta/maint.h"
#include "parquet/inspect.h"

struct inspect_cfg {
  bool json;
};

const ed_opt_t cmd_inspect_options[] = {
    {"json", 'j', ED_OPT_FLAG, NULL, NULL, offsetof(struct inspect_cfg, json),
     "print one JSON object instead of text", 0, 0, 0, NULL},
    ED_OPT_END,
};

static bool is_parquet_path(const char *p) {
  size_t n = strlen(p);
  return n >= 8 && !strcmp(p + n - 8, ".parquet");
}

static int inspect_file(const char *path, bool json) {
  ed_err_t err = {0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ed_err_set(&err, errno == ENOENT ? ED_E_NOT_FOUND : ED_E_IO, "%s: %s", path, strerror(errno));
    return cli_fail("inspect", &err);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    ed_err_set(&err, ED_E_INVALID, "%s: not a regular file", path);
    return cli_fail("inspect", &err);
  }
  size_t len = (size_t)st.st_size;
  /* The footer is at the end and pages are read on demand: map, don't copy. */
  void *data = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  close(fd);
  if (len && data == MAP_FAILED) {
    ed_err_set(&err, ED_E_IO, "%s: mmap: %s", path, strerror(errno));
    return cli_fail("inspect", &err);
  }
  ed_buf_t out = ED_BUF_INIT;
  ed_code_t rc = pq_inspect(data ? data : "", len, json, &out, &err);
  if (data)
    munmap(data, len);
  int status = CLI_EXIT_OK;
  if (rc) {
    ed_err_prefix(&err, "%s", path);
    status = cli_fail("inspect", &err);
  } else {
    fputs(out.data ? out.data : "", stdout);
  }
  ed_buf_fini(&out);
  return status;
}

/* The agent's checkpoint of each txn appId's last batch, when it is where the
 * agent keeps it by default (PATH/_ehdelta/checkpoints/BATCH.json): where each
 * partition resumes, the watermark, how much window state it carries. */
static void agent_checkpoints(st_store_t *s, dl_table_t *t, bool json, ed_buf_t *out) {
  st_store_t *ck = NULL;
  ed_err_t err = {0};
  if (!dl_table_num_txns(t) || st_open_sub(s, "_ehdelta/checkpoints", &ck, &err))
    return;
  json_object *root = json ? json_tokener_parse(out->data ? out->data : "") : NULL,
              *all = json ? json_object_new_object() : NULL;
  bool header = false;
  for (size_t i = 0; i < dl_table_num_txns(t); i++) {
    const dl_txn_t *x = dl_table_txn_at(t, i);
    char key[40];
    snprintf(key, sizeof key, "%" PRId64 ".json", x->version);
    ed_buf_t b = ED_BUF_INIT;
    ag_ckpt_t c = {0};
    if (st_get(ck, key, 0, -1, &b, &err) == ED_OK &&
        ag_ckpt_from_json(key, b.data, b.len, &c, &err) == ED_OK) {
      char wm[ED_TIME_ISO_MAX] = "none";
      if (c.watermark_us != INT64_MIN)
        ed_time_format_iso(c.watermark_us, 3, wm);
      if (json) {
        json_object *o = json_object_new_object(), *seq = json_object_new_object();
        json_object_object_add(o, "batchId", json_object_new_int64(c.batch_id));
        for (size_t p = 0; p < c.n; p++)
          json_object_object_add(seq, c.partition[p], json_object_new_int64(c.seq[p]));
        json_object_object_add(o, "sequenceNumbers", seq);
        json_object_object_add(o, "watermark",
                               c.watermark_us != INT64_MIN ? json_object_new_string(wm) : NULL);
        json_object_object_add(o, "stateBytes", json_object_new_int64((int64_t)c.state.len));
        json_object_object_add(all, x->app_id, o);
      } else {
        if (!header)
          ed_buf_puts(out, "agent checkpoints (_ehdelta/checkpoints):\n");
        header = true;
        ed_buf_printf(out, "  %s batch=%" PRId64 " watermark=%s state=%zu bytes\n    ", x->app_id,
                      c.batch_id, wm, c.state.len);
        for (size_t p = 0; p < c.n; p++)
          ed_buf_printf(out, "%s%s:%" PRId64, p ? " " : "", c.partition[p], c.seq[p]);
        ed_buf_puts(out, c.n ? "\n" : "(no partition yet)\n");
      }
    }
    ag_ckpt_fini(&c);
    ed_buf_fini(&b);
  }
  if (root && json_object_is_type(root, json_type_object)) {
    json_object_object_add(root, "agentCheckpoints", all);
    all = NULL;
    ed_buf_reset(out);
    ed_buf_printf(out, "%s\n",
                  json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
  }
  json_object_put(all);
  json_object_put(root);
  st_free(ck);
}

/* Delta tables (local or Azure): the snapshot rendered by delta/maint.c, and
 * the agent's checkpoints beside it. */
static int inspect_table(const char *path, bool json) {
  ed_err_t err = {0};
  st_store_t *s = NULL;
  dl_table_t *t = NULL;
  ed_buf_t out = ED_BUF_INIT;
  int status = CLI_EXIT_OK;
  if (st_open(path, NULL, &s, &err) || dl_table_open(s, &t, &err) ||
      dl_inspect(t, json, &out, &err)) {
    status = cli_fail("inspect", &err);
  } else {
    agent_checkpoints(s, t, json, &out);
    fputs(out.data ? out.data : "", stdout);
  }
  ed_buf_fini(&out);
  dl_table_free(t);
  st_free(s);
  return status;
}

int cmd_inspect(int argc, char **argv) {
  struct inspect_cfg cfg = {0};
  int nop = 0, rc;
  if ((rc = cli_parse("inspect", "ehdelta inspect [--json] FILE.parquet|TABLE",
                      "Show a Parquet file's footer or a Delta table.", cmd_inspect_options, &cfg,
                      argc, argv, &nop)) >= 0)
    goto out;
  if (nop != 1) {
    fprintf(stderr, "ehdelta inspect: expected one FILE.parquet or TABLE, got %d operands\n", nop);
    rc = CLI_EXIT_USAGE;
    goto out;
  }
  rc =
      is_parquet_path(argv[0]) ? inspect_file(argv[0], cfg.json) : inspect_table(argv[0], cfg.json);
out:
  ed_opt_free(cmd_inspect_options, &cfg);
  return rc;
}
