/* ehdelta vacuum: delete files no live version of a Delta table references. */
#include <inttypes.h>
#include <stdio.h>

#include "cli/cli.h"
#include "delta/maint.h"

struct vacuum_cfg {
  int64_t retain;
  bool dry_run;
  bool force;
};

const ed_opt_t cmd_vacuum_options[] = {
    {"retain", 'r', ED_OPT_DURATION, "DURATION", NULL, offsetof(struct vacuum_cfg, retain),
     "keep unreferenced files younger than this (e.g. \"7 days\", \"168 hours\")", ED_OPT_REQUIRED,
     0, 0, NULL},
    {"dry-run", 'n', ED_OPT_FLAG, NULL, NULL, offsetof(struct vacuum_cfg, dry_run),
     "list the files that would be deleted, delete nothing", 0, 0, 0, NULL},
    {"force", 'f', ED_OPT_FLAG, NULL, NULL, offsetof(struct vacuum_cfg, force),
     "allow --retain below delta.deletedFileRetentionDuration", 0, 0, 0, NULL},
    ED_OPT_END,
};

int cmd_vacuum(int argc, char **argv) {
  struct vacuum_cfg cfg = {0};
  int nop = 0, rc;
  if ((rc = cli_parse("vacuum", "ehdelta vacuum TABLE --retain DURATION [--dry-run] [--force]",
                      "Delete data files that no live version of a Delta table references.",
                      cmd_vacuum_options, &cfg, argc, argv, &nop)) >= 0)
    return rc;
  if (nop != 1) {
    fprintf(stderr, "ehdelta vacuum: expected one TABLE (a path or an Azure URL)\n");
    return CLI_EXIT_USAGE;
  }
  ed_err_t err = {0};
  st_store_t *s = NULL;
  dl_table_t *t = NULL;
  dl_vacuum_opts_t o = {cfg.retain, cfg.dry_run, cfg.force, 0};
  dl_vacuum_result_t r = {0};
  if (st_open(argv[0], NULL, &s, &err) || dl_table_open(s, &t, &err) ||
      dl_vacuum(t, &o, &r, &err)) {
    rc = cli_fail("vacuum", &err);
  } else {
    for (size_t i = 0; i < r.files; i++)
      printf("%s %s\n", cfg.dry_run ? "would delete" : "deleted", r.paths[i]);
    printf("%s table=%s files=%zu bytes=%" PRId64 "\n", cfg.dry_run ? "plan" : "vacuumed", argv[0],
           r.files, r.bytes);
    rc = CLI_EXIT_OK;
  }
  dl_vacuum_result_fini(&r);
  dl_table_free(t);
  st_free(s);
  return rc;
}
