/* ehdelta optimize: compact a Delta table's small files (delta/maint.h). */
#include <inttypes.h>
#include <stdio.h>

#include "cli/cli.h"
#include "delta/maint.h"

struct optimize_cfg {
  int64_t target_size;
  bool dry_run;
};

const ed_opt_t cmd_optimize_options[] = {
    {"target-size", 't', ED_OPT_INT, "BYTES", NULL, offsetof(struct optimize_cfg, target_size),
     "size of the files to build (default: the table's delta.targetFileSize, else 134217728)", 0, 0,
     INT64_C(1) << 40, NULL},
    {"dry-run", 'n', ED_OPT_FLAG, NULL, NULL, offsetof(struct optimize_cfg, dry_run),
     "print the plan, change nothing", 0, 0, 0, NULL},
    ED_OPT_END,
};

int cmd_optimize(int argc, char **argv) {
  struct optimize_cfg cfg = {0};
  int nop = 0, rc;
  if ((rc = cli_parse("optimize", "ehdelta optimize TABLE [--target-size BYTES] [--dry-run]",
                      "Bin-pack the small files of each partition of a Delta table.",
                      cmd_optimize_options, &cfg, argc, argv, &nop)) >= 0)
    return rc;
  if (nop != 1) {
    fprintf(stderr, "ehdelta optimize: expected one TABLE (a path or an Azure URL)\n");
    return CLI_EXIT_USAGE;
  }
  ed_err_t err = {0};
  st_store_t *s = NULL;
  dl_table_t *t = NULL;
  dl_optimize_opts_t o = {.target_size = cfg.target_size, .dry_run = cfg.dry_run};
  dl_optimize_result_t r;
  if (st_open(argv[0], NULL, &s, &err) || dl_table_open(s, &t, &err) ||
      dl_optimize(t, &o, &r, &err)) {
    rc = cli_fail("optimize", &err);
  } else {
    printf("%s table=%s partitions=%zu files_removed=%zu bytes_removed=%" PRId64
           " files_added=%zu bytes_added=%" PRId64 " rows=%" PRId64 " version=%" PRId64 "\n",
           cfg.dry_run ? "plan" : "optimized", argv[0], r.partitions, r.files_removed,
           r.bytes_removed, r.files_added, r.bytes_added, r.rows,
           r.version >= 0 ? r.version : dl_table_version(t));
    rc = CLI_EXIT_OK;
  }
  dl_table_free(t);
  st_free(s);
  return rc;
}
