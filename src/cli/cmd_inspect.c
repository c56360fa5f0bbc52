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

#include "cli/cli.h"
#include "common/buf.h"
#include "delta/maint.h"
#include "parquet/inspect.h"

struct inspect_cfg {
  bool json;
};

const ed_opt_t cmd_inspect_options[] = {
    {"json", 'j', ED_OPT_FLAG, NULL, NULL, offsetof(struct inspect_cfg, json),
     "print one JSON object instead of text", 0, 0, 0},
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

/* Delta tables (local or Azure): the snapshot rendered by delta/maint.c. */
static int inspect_table(const char *path, bool json) {
  ed_err_t err = {0};
  st_store_t *s = NULL;
  dl_table_t *t = NULL;
  ed_buf_t out = ED_BUF_INIT;
  int status = CLI_EXIT_OK;
  if (st_open(path, NULL, &s, &err) || dl_table_open(s, &t, &err) ||
      dl_inspect(t, json, &out, &err))
    status = cli_fail("inspect", &err);
  else
    fputs(out.data ? out.data : "", stdout);
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
