/* The agent's fault-injection build: an LD_PRELOAD shim that counts every file-changing system
 * call the agent (and the core library under it) makes under one directory, and makes the Nth one
 * fail or kills the process right before it. Tests loop N over every point, so each write, fsync,
 * rename, link, unlink and create of an update is failed (or cut) in turn, in the real binary.
 *
 *   MALLORN_FAULT_DIR    only paths (and fds opened on paths) under this prefix count
 *   MALLORN_FAULT_AT     1-based index of the operation to hit; 0 or unset: only count
 *   MALLORN_FAULT_MODE   fail       the Nth operation fails with MALLORN_FAULT_ERRNO
 *                        fail_from  the Nth and every later one fails (a disk that filled up)
 *                        crash      SIGKILL right before the Nth operation (a power cut, as far as
 *                                   a process can tell: unsynced data stays in the page cache)
 *   MALLORN_FAULT_ERRNO  errno for failures (default ENOSPC for writes/creates, EIO otherwise)
 *   MALLORN_FAULT_REPORT file that receives "<ops counted> <op hit or 0> <kind> <path>" at exit
 *                        or right before the crash
 *   MALLORN_FAULT_TRACE  file that receives one line "<n> <kind> <path>" per operation counted
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static const char* fault_dir;
static size_t fault_dir_len;
static long fault_at;
static int fault_mode; /* 0 fail, 1 fail_from, 2 crash */
static int fault_errno;
static long op_count;
static long op_hit;
static char hit_kind[16];
static char hit_path[512];
static int trace_fd = -1;

static void write_report(void) {
  const char* file = getenv("MALLORN_FAULT_REPORT");
  if (!file) return;
  char line[700];
  int n = snprintf(line, sizeof line, "%ld %ld %s %s\n", op_count, op_hit, op_hit ? hit_kind : "-",
                   op_hit ? hit_path : "-");
  /* Raw syscalls: the report must not count itself or recurse into the wrappers. */
  int fd = (int)syscall(SYS_openat, AT_FDCWD, file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  (void)syscall(SYS_write, fd, line, (size_t)n);
  (void)syscall(SYS_close, fd);
}

__attribute__((constructor)) static void shim_init(void) {
  /* Faults are for this process only: the health check it spawns runs unharmed. */
  unsetenv("LD_PRELOAD");
  fault_dir = getenv("MALLORN_FAULT_DIR");
  fault_dir_len = fault_dir ? strlen(fault_dir) : 0;
  const char* at = getenv("MALLORN_FAULT_AT");
  fault_at = at ? atol(at) : 0;
  const char* mode = getenv("MALLORN_FAULT_MODE");
  fault_mode = !mode ? 0 : strcmp(mode, "fail_from") == 0 ? 1 : strcmp(mode, "crash") == 0 ? 2 : 0;
  const char* e = getenv("MALLORN_FAULT_ERRNO");
  fault_errno = !e ? 0 : strcmp(e, "EIO") == 0 ? EIO : strcmp(e, "ENOSPC") == 0 ? ENOSPC : atoi(e);
  const char* trace = getenv("MALLORN_FAULT_TRACE");
  if (trace)
    trace_fd = (int)syscall(SYS_openat, AT_FDCWD, trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

__attribute__((destructor)) static void shim_fini(void) { write_report(); }

static int under_dir(const char* path) {
  if (!fault_dir_len || !path) return 0;
  if (path[0] != '/') {
    /* Relative paths: resolve against the working directory. */
    char cwd[512];
    if (!getcwd(cwd, sizeof cwd)) return 0;
    return strncmp(cwd, fault_dir, fault_dir_len) == 0;
  }
  return strncmp(path, fault_dir, fault_dir_len) == 0;
}

static int fd_under_dir(int fd, char* out, size_t out_size) {
  if (!fault_dir_len || fd < 0) return 0;
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, out, out_size - 1);
  if (n <= 0) return 0;
  out[n] = 0;
  return strncmp(out, fault_dir, fault_dir_len) == 0;
}

/* Counts one operation; returns -1 (with errno set) when it must fail. */
static int fault_point(const char* kind, const char* path, int default_errno) {
  long n = __atomic_add_fetch(&op_count, 1, __ATOMIC_SEQ_CST);
  if (trace_fd >= 0) {
    char line[600];
    int len = snprintf(line, sizeof line, "%ld %s %s\n", n, kind, path ? path : "?");
    (void)syscall(SYS_write, trace_fd, line, (size_t)len);
  }
  if (fault_at <= 0) return 0;
  int hit = fault_mode == 1 ? n >= fault_at : n == fault_at;
  if (!hit) return 0;
  if (!op_hit) {
    op_hit = n;
    snprintf(hit_kind, sizeof hit_kind, "%s", kind);
    snprintf(hit_path, sizeof hit_path, "%s", path ? path : "?");
  }
  if (fault_mode == 2) {
    write_report();
    raise(SIGKILL);
  }
  errno = fault_errno ? fault_errno : default_errno;
  return -1;
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

static int is_write_open(int flags) { return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0; }

static int open_common(const char* kind, int dirfd, const char* path, int flags, mode_t mode) {
  if (is_write_open(flags) && (dirfd == AT_FDCWD || path[0] == '/') && under_dir(path) &&
      fault_point(kind, path, ENOSPC) < 0)
    return -1;
  return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

/* The mode argument exists only with O_CREAT / O_TMPFILE. */
#define MODE_ARG(last, flags, mode)   \
  do {                                \
    if ((flags) & (O_CREAT | O_TMPFILE)) { \
      va_list ap;                     \
      va_start(ap, last);             \
      mode = va_arg(ap, mode_t);      \
      va_end(ap);                     \
    }                                 \
  } while (0)

int open(const char* path, int flags, ...) {
  mode_t mode = 0;
  MODE_ARG(flags, flags, mode);
  return open_common("open", AT_FDCWD, path, flags, mode);
}
int open64(const char* path, int flags, ...) __attribute__((alias("open")));

int openat(int dirfd, const char* path, int flags, ...) {
  mode_t mode = 0;
  MODE_ARG(flags, flags, mode);
  return open_common("open", dirfd, path, flags, mode);
}
int openat64(int dirfd, const char* path, int flags, ...) __attribute__((alias("openat")));

int mkostemp(char* tmpl, int flags) {
  if (under_dir(tmpl) && fault_point("create", tmpl, ENOSPC) < 0) return -1;
  return REAL(mkostemp)(tmpl, flags);
}
int mkstemp(char* tmpl) { return mkostemp(tmpl, 0); }

ssize_t write(int fd, const void* buf, size_t n) {
  char path[512];
  if (fd > 2 && fd_under_dir(fd, path, sizeof path) && fault_point("write", path, ENOSPC) < 0) return -1;
  return REAL(write)(fd, buf, n);
}
ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  char path[512];
  if (fd_under_dir(fd, path, sizeof path) && fault_point("write", path, ENOSPC) < 0) return -1;
  return REAL(pwrite)(fd, buf, n, off);
}
ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) __attribute__((alias("pwrite")));
ssize_t writev(int fd, const struct iovec* iov, int count) {
  char path[512];
  if (fd > 2 && fd_under_dir(fd, path, sizeof path) && fault_point("write", path, ENOSPC) < 0) return -1;
  return REAL(writev)(fd, iov, count);
}
int ftruncate(int fd, off_t len) {
  char path[512];
  if (fd_under_dir(fd, path, sizeof path) && fault_point("truncate", path, EIO) < 0) return -1;
  return REAL(ftruncate)(fd, len);
}
int ftruncate64(int fd, off_t len) __attribute__((alias("ftruncate")));
int fsync(int fd) {
  char path[512];
  if (fd_under_dir(fd, path, sizeof path) && fault_point("fsync", path, EIO) < 0) return -1;
  return REAL(fsync)(fd);
}
int fdatasync(int fd) {
  char path[512];
  if (fd_under_dir(fd, path, sizeof path) && fault_point("fsync", path, EIO) < 0) return -1;
  return REAL(fdatasync)(fd);
}
int rename(const char* from, const char* to) {
  if (under_dir(to) && fault_point("rename", to, EIO) < 0) return -1;
  return REAL(rename)(from, to);
}
int renameat(int fromfd, const char* from, int tofd, const char* to) {
  if (under_dir(to) && fault_point("rename", to, EIO) < 0) return -1;
  return REAL(renameat)(fromfd, from, tofd, to);
}
int symlink(const char* target, const char* path) {
  if (under_dir(path) && fault_point("symlink", path, ENOSPC) < 0) return -1;
  return REAL(symlink)(target, path);
}
int link(const char* from, const char* to) {
  if (under_dir(to) && fault_point("link", to, ENOSPC) < 0) return -1;
  return REAL(link)(from, to);
}
int unlink(const char* path) {
  if (under_dir(path) && fault_point("unlink", path, EIO) < 0) return -1;
  return REAL(unlink)(path);
}
int remove(const char* path) {
  if (under_dir(path) && fault_point("unlink", path, EIO) < 0) return -1;
  return REAL(remove)(path);
}
int mkdir(const char* path, mode_t mode) {
  if (under_dir(path) && fault_point("mkdir", path, ENOSPC) < 0) return -1;
  return REAL(mkdir)(path, mode);
}
