/* spark: reading a Spark Structured Streaming checkpoint folder written by the
 * Azure Event Hubs connector (azure-event-hubs-spark), so that ehdelta can
 * take over a table at the position the stopped Spark query last committed.
 * Owns the parsed positions. Reads offsets/<n> and commits/<n> through the
 * store layer (local folders and ADLS alike); never writes to the folder.
 * Called by the run loop before any sink commits, and by tests. */
#ifndef ED_AGENT_SPARK_H
#define ED_AGENT_SPARK_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

/* The positions of the last batch Spark committed. */
typedef struct ag_spark_pos {
  char *url;            /* the folder, for messages */
  char *query_id;       /* the query's id (its metadata file): the appId of its Delta txns */
  int64_t batch_id;     /* the batch whose offsets these are */
  int64_t committed;    /* the last n with a commits/<n> file */
  char *hub;            /* the Event Hubs name the source read */
  char *consumer_group; /* NULL in the connector's older offset format */
  size_t n;
  char **partition; /* partition ids */
  int64_t *next;    /* the connector's offset: the NEXT sequence number to read */
} ag_spark_pos_t;

/* Reads the folder at url (st_open's forms; store may be NULL) into *out:
 * the offsets of batch (-1: the last committed one). Clear one-line errors:
 * ED_E_CONFIG when there is no commits/ entry (the query never finished a
 * batch) or no Event Hubs source line in the offsets; ED_E_CORRUPT for a
 * malformed or missing offsets file. Caller frees with ag_spark_pos_fini. */
ed_code_t ag_spark_read(const char *url, const st_opts_t *store, int64_t batch, ag_spark_pos_t *out,
                        ed_err_t *err);
/* Parses one offsets file's text (v1, the batch metadata, one line per
 * source); name is for messages. Fills hub, consumer_group and the
 * partitions of *out. */
ed_code_t ag_spark_parse_offsets(const char *name, const char *text, size_t len,
                                 ag_spark_pos_t *out, ed_err_t *err);
/* ED_E_CONFIG unless pos read hub and exactly the partitions ids[0..n). */
ed_code_t ag_spark_match(const ag_spark_pos_t *pos, const char *hub, char *const *ids, size_t n,
                         ed_err_t *err);
/* The next sequence number of partition id; false when Spark has none. */
bool ag_spark_next(const ag_spark_pos_t *pos, const char *id, int64_t *next);
void ag_spark_pos_fini(ag_spark_pos_t *p);

#endif
