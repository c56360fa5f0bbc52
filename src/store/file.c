/* file: the local-disk backend. Atomic replace is temp file + fsync + rename;
 * put-if-absent is temp file + fsync + link() (EEXIST = lost the race), then
 * the directory is fsynced so the new name survives a crash (Delta
 * PROTOCOL.md "Creation of New Log Entries"; reference B.2). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/time.h"
#include "store/store_int.h"

typedef struct {
  char *root; /* no trailing slash */
} fstore_t;

static char *join(const fstore_t *f, const char *key) {
  size_t n = strlen(f->root) + strlen(key) + 2;
  char *p = malloc(n);
  if (p)
    snprintf(p, n, "%s/%s", f->root, key);
  return p;
}

static ed_code_t errno_code(int e) {
  switch (e) {
  case ENOENT:
  case ENOTDIR:
    return ED_E_NOT_FOUND;
  case EEXIST:
    return ED_E_EXISTS;
  case ENOSPC:
  case EDQUOT:
    return ED_E_NOSPACE;
  /* Mode bits, ACLs and read-only mounts are the file system's answer, not
   * a refused credential: an I/O error, exit status 1 (ehdelta(1)); the
   * message carries strerror. */
  case EACCES:
  case EPERM:
  case EROFS:
    return ED_E_IO;
  case ENOMEM:
    return ED_E_NOMEM;
  default:
    return ED_E_IO;
  }
}

static ed_code_t sys_fail(ed_err_t *err, const char *what, const char *path) {
  int e = errno;
  return ed_err_set(err, errno_code(e), "%s '%s': %s", what, path, strerror(e));
}

/* mkdir -p of the parent directories of path. */
static ed_code_t mkparents(char *path, ed_err_t *err) {
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = 0;
    int r = mkdir(path, 0755);
    int e = errno;
    *p = '/';
    if (r && e != EEXIST) {
      return ed_err_set(err, errno_code(e), "create directory '%.*s': %s", (int)(p - path), path,
                        strerror(e));
    }
  }
  return ED_OK;
}

static void fsync_parent(const char *path) {
  char *d = strdup(path);
  if (!d)
    return;
  char *sl = strrchr(d, '/');
  if (sl)
    *sl = 0;
  int fd = open(sl ? (*d ? d : "/") : ".", O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(d);
}

static ed_code_t write_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errno_code(errno);
    }
    p += w;
    n -= (size_t)w;
  }
  return ED_OK;
}

/* A temp name next to the target that no Delta reader picks up: a leading '.'
 * and a '.tmp' suffix (Spark's `.<name>.<uuid>.tmp`). */
static char *temp_for(const char *path) {
  const char *base = strrchr(path, '/');
  size_t dl = base ? (size_t)(base - path) + 1 : 0;
  static unsigned seq;
  char tail[96];
  snprintf(tail, sizeof tail, ".%d.%u.%lld.tmp", (int)getpid(), __atomic_add_fetch(&seq, 1, 0),
           (long long)ed_time_mono_us());
  size_t n = strlen(path) + sizeof tail + 4;
  char *t = malloc(n);
  if (t)
    snprintf(t, n, "%.*s.%s%s", (int)dl, path, path + dl, tail);
  return t;
}

static ed_code_t write_temp(const char *tmp, const void *data, size_t n, const char *src_path,
                            ed_err_t *err) {
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return sys_fail(err, "create", tmp);
  ed_code_t rc = ED_OK;
  if (src_path) {
    int in = open(src_path, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
      rc = sys_fail(err, "open", src_path);
    } else {
      char buf[1 << 16];
      ssize_t r;
      while ((r = read(in, buf, sizeof buf)) > 0)
        if ((rc = write_all(fd, buf, (size_t)r)))
          break;
      if (r < 0 && !rc)
        rc = sys_fail(err, "read", src_path);
      close(in);
      if (rc && !err->msg[0])
        ed_err_set(err, rc, "write '%s': %s", tmp, strerror(errno));
    }
  } else if ((rc = write_all(fd, data, n))) {
    ed_err_set(err, rc, "write '%s': %s", tmp, strerror(errno));
  }
  if (!rc && fsync(fd))
    rc = sys_fail(err, "fsync", tmp);
  if (close(fd) && !rc)
    rc = sys_fail(err, "close", tmp);
  if (rc)
    unlink(tmp);
  return rc;
}

static ed_code_t fput_common(st_store_t *s, const char *key, const void *data, size_t n,
                             const char *src, bool if_absent, ed_err_t *err) {
  fstore_t *f = s->impl;
  char *path = join(f, key), *tmp = path ? temp_for(path) : NULL;
  ed_code_t rc = ED_OK;
  if (!path || !tmp) {
    rc = ed_err_set(err, ED_E_NOMEM, "store: out of memory");
    goto out;
  }
  if ((rc = mkparents(path, err)))
    goto out;
  if ((rc = write_temp(tmp, data, n, src, err)))
    goto out;
  if (if_absent) {
    if (link(tmp, path)) {
      int e = errno;
      /* NFS: a lost reply makes a link that succeeded report an error; a
       * link count of 2 on our temp file means it did land (open(2)). */
      struct stat st;
      if (e != EEXIST && stat(tmp, &st) == 0 && st.st_nlink == 2) {
        unlink(tmp);
        fsync_parent(path);
        goto out;
      }
      unlink(tmp);
      if (e == EEXIST) {
        rc = ed_err_set(err, ED_E_EXISTS, "'%s' already exists", key);
      } else {
        errno = e;
        rc = sys_fail(err, "link", path);
      }
      goto out;
    }
    unlink(tmp);
  } else if (rename(tmp, path)) {
    rc = sys_fail(err, "rename", path);
    unlink(tmp);
    goto out;
  }
  fsync_parent(path);
out:
  free(tmp);
  free(path);
  return rc;
}

static ed_code_t fput(st_store_t *s, const char *key, const void *data, size_t n, bool if_absent,
                      ed_err_t *err) {
  return fput_common(s, key, data, n, NULL, if_absent, err);
}

static ed_code_t fput_file(st_store_t *s, const char *key, const char *src, ed_err_t *err) {
  return fput_common(s, key, NULL, 0, src, false, err);
}

static ed_code_t fget(st_store_t *s, const char *key, int64_t off, int64_t len, ed_buf_t *out,
                      ed_err_t *err) {
  char *path = join(s->impl, key);
  if (!path)
    return ED_E_NOMEM;
  ed_code_t rc = ED_OK;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st)) {
    rc = sys_fail(err, "open", path);
    goto out;
  }
  if (S_ISDIR(st.st_mode)) {
    rc = ed_err_set(err, ED_E_NOT_FOUND, "'%s' is a directory, expected a file", path);
    goto out;
  }
  if (off < 0 || off > st.st_size) {
    rc = ed_err_set(err, ED_E_INVALID, "read '%s': offset %lld past the end (%lld bytes)", path,
                    (long long)off, (long long)st.st_size);
    goto out;
  }
  int64_t want = len < 0 || off + len > st.st_size ? st.st_size - off : len;
  if ((rc = ed_buf_reserve(out, (size_t)want)))
    goto out;
  int64_t got = 0;
  while (got < want) {
    ssize_t r = pread(fd, out->data + out->len, (size_t)(want - got), off + got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      rc = r < 0 ? sys_fail(err, "read", path)
                 : ed_err_set(err, ED_E_CORRUPT, "read '%s': file shrank while reading", path);
      goto out;
    }
    out->len += (size_t)r;
    got += r;
  }
  out->data[out->len] = 0;
out:
  if (fd >= 0)
    close(fd);
  free(path);
  return rc;
}

static ed_code_t walk(const char *root, size_t rootlen, const char *dir, const char *prefix,
                      bool names_only, st_list_t *out, ed_err_t *err) {
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT || errno == ENOTDIR)
      return ED_OK;
    return sys_fail(err, "list", dir);
  }
  ed_code_t rc = ED_OK;
  struct dirent *de;
  ed_buf_t p = ED_BUF_INIT;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    ed_buf_reset(&p);
    if ((rc = ed_buf_printf(&p, "%s/%s", dir, de->d_name)))
      break;
    const char *rel = p.data + rootlen + 1;
    size_t pl = strlen(prefix), rl = strlen(rel);
    /* Descend only where the prefix can still match. */
    size_t cmp = rl < pl ? rl : pl;
    if (strncmp(rel, prefix, cmp))
      continue;
    if (names_only && de->d_type == DT_REG) {
      if (rl >= pl && (rc = st_list_push(out, rel, rl, -1, -1)))
        break;
      continue;
    }
    struct stat st;
    /* relative to the open directory: no full path walk per entry */
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
      continue; /* vanished meanwhile (a concurrent cleanup) */
    if (S_ISDIR(st.st_mode)) {
      if ((rc = walk(root, rootlen, p.data, prefix, names_only, out, err)))
        break;
    } else if (S_ISREG(st.st_mode) && rl >= pl) {
      int64_t ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
      if ((rc = st_list_push(out, rel, rl, st.st_size, ms)))
        break;
    }
  }
  ed_buf_fini(&p);
  closedir(d);
  return rc;
}

static ed_code_t flist(st_store_t *s, const char *prefix, st_list_t *out, ed_err_t *err) {
  fstore_t *f = s->impl;
  /* Start at the deepest directory named by the prefix. */
  ed_buf_t dir = ED_BUF_INIT;
  const char *sl = strrchr(prefix, '/');
  ed_code_t rc = ed_buf_puts(&dir, f->root);
  if (!rc && sl) {
    rc = ed_buf_putc(&dir, '/');
    if (!rc)
      rc = ed_buf_append(&dir, prefix, (size_t)(sl - prefix));
  }
  if (!rc)
    rc = walk(f->root, strlen(f->root), dir.data, prefix, s->names_only, out, err);
  ed_buf_fini(&dir);
  return rc;
}

static ed_code_t fdel(st_store_t *s, const char *key, ed_err_t *err) {
  char *path = join(s->impl, key);
  if (!path)
    return ED_E_NOMEM;
  ed_code_t rc = ED_OK;
  if (unlink(path) && errno != ENOENT)
    rc = sys_fail(err, "delete", path);
  free(path);
  return rc;
}

static ed_code_t fstat_(st_store_t *s, const char *key, st_stat_t *out, ed_err_t *err) {
  char *path = join(s->impl, key);
  if (!path)
    return ED_E_NOMEM;
  struct stat st;
  ed_code_t rc = ED_OK;
  if (stat(path, &st))
    rc = sys_fail(err, "stat", path);
  else if (S_ISDIR(st.st_mode))
    rc = ed_err_set(err, ED_E_NOT_FOUND, "'%s' is a directory, expected a file", path);
  else {
    out->size = st.st_size;
    out->mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
  }
  free(path);
  return rc;
}

static ed_code_t fsub(st_store_t *s, const char *key, st_store_t **out, ed_err_t *err) {
  char *path = join(s->impl, key);
  if (!path)
    return ED_E_NOMEM;
  ed_code_t rc = st_file_open(path, path, out, err);
  free(path);
  return rc;
}

static void ffree(st_store_t *s) {
  fstore_t *f = s->impl;
  if (f)
    free(f->root);
  free(f);
}

/* no metadata or ETags: a checkpoint store must be a Blob container */
static const st_ops_t file_ops = {fget,   fput, fput_file, flist, fdel,
                                  fstat_, fsub, ffree,     NULL,  NULL};

ed_code_t st_file_open(const char *path, const char *url, st_store_t **out, ed_err_t *err) {
  st_store_t *s = calloc(1, sizeof *s);
  fstore_t *f = calloc(1, sizeof *f);
  if (!s || !f || !(s->url = strdup(url)) || !(f->root = strdup(path))) {
    if (s)
      free(s->url);
    free(s);
    free(f);
    return ed_err_set(err, ED_E_NOMEM, "store: out of memory");
  }
  size_t n = strlen(f->root);
  while (n > 1 && f->root[n - 1] == '/')
    f->root[--n] = 0;
  s->ops = &file_ops;
  s->local = true;
  s->impl = f;
  struct stat st;
  if (stat(f->root, &st) == 0 && !S_ISDIR(st.st_mode)) {
    st_free(s);
    return ed_err_set(err, ED_E_INVALID, "store root '%s' is a file, expected a directory", path);
  }
  *out = s;
  return ED_OK;
}
