#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tl_outfile_open(tl_outfile *o, const char *path, tl_err *e)
{
    memset(o, 0, sizeof *o);
    if (!strcmp(path, "-")) {
        o->fp = stdout;
        o->is_stdout = 1;
        return 0;
    }
    /* A device, pipe or socket (-o /dev/null, a FIFO) is written in place:
     * renaming a temporary file over it would replace the device. */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode))
            return tl_fail(e, "%s: is a folder", path);
        o->fp = fopen(path, "wb");
        if (!o->fp)
            return tl_fail(e, "%s: cannot open: %s", path, strerror(errno));
        o->path = tl_strdup(path);
        o->is_special = 1;
        return 0;
    }
    size_t n = strlen(path);
    o->path = tl_strdup(path);
    o->tmp = malloc(n + 16);
    if (!o->path || !o->tmp) {
        tl_outfile_abort(o);
        return tl_fail(e, "out of memory");
    }
    /* Same folder as the target, so rename() stays within one file system;
     * open() with 0666 lets the umask decide the final permissions, as for
     * any file a program creates (mkstemp would force 0600). */
    int fd = -1, err = EEXIST;
    uint64_t salt = (uint64_t)getpid() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)o ^
                    (uint64_t)(tl_now() * 1e9);
    for (int attempt = 0; attempt < 100 && fd < 0 && err == EEXIST; attempt++) {
        salt = salt * 6364136223846793005ULL + 1442695040888963407ULL;
        snprintf(o->tmp, n + 16, "%s.tmp.%06llx", path, (unsigned long long)(salt >> 40));
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        err = fd < 0 ? errno : 0;
    }
    if (fd < 0) {
        free(o->tmp);
        o->tmp = NULL;
        tl_outfile_abort(o);
        return tl_fail(e, "%s: cannot create: %s", path, strerror(err));
    }
    o->fp = fdopen(fd, "wb");
    if (!o->fp) {
        close(fd);
        tl_outfile_abort(o);
        return tl_fail(e, "%s: cannot open: %s", path, strerror(errno));
    }
    return 0;
}

int tl_outfile_open_partial(tl_outfile *o, const char *path, const char *partial, uint64_t keep, tl_err *e)
{
    memset(o, 0, sizeof *o);
    o->path = tl_strdup(path);
    o->tmp = tl_strdup(partial);
    if (!o->path || !o->tmp) {
        tl_outfile_abort(o);
        return tl_fail(e, "out of memory");
    }
    o->keep_tmp = 1;
    int fd = open(partial, O_WRONLY | O_CREAT | O_CLOEXEC | (keep ? 0 : O_TRUNC), 0666);
    if (fd < 0 || ftruncate(fd, (off_t)keep) != 0 || lseek(fd, 0, SEEK_END) < 0 || !(o->fp = fdopen(fd, "wb"))) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        tl_outfile_abort(o);
        return tl_fail(e, "%s: cannot continue: %s", partial, strerror(err));
    }
    return 0;
}

int tl_outfile_commit(tl_outfile *o, tl_err *e)
{
    if (o->is_stdout) {
        if (fflush(stdout) != 0 || ferror(stdout))
            return tl_fail(e, "standard output: write failed: %s", strerror(errno));
        return 0;
    }
    if (o->is_special) {
        int bad = fflush(o->fp) != 0 || ferror(o->fp);
        int err = errno;
        bad |= fclose(o->fp) != 0;
        o->fp = NULL;
        if (bad)
            tl_fail(e, "%s: write failed: %s", o->path ? o->path : "output", strerror(err));
        free(o->path);
        o->path = NULL;
        o->is_special = 0;
        return bad ? -1 : 0;
    }
    if (!o->fp) /* never opened, or already committed: fflush(NULL) would flush everything */
        return tl_fail(e, "output file is not open");
    const char *name = o->path ? o->path : "output";
    int bad = fflush(o->fp) != 0 || ferror(o->fp);
    int err = errno;
    if (!bad && fsync(fileno(o->fp)) != 0 && errno != EINVAL) {
        bad = 1;
        err = errno;
    }
    if (fclose(o->fp) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    o->fp = NULL;
    if (bad) {
        tl_fail(e, "%s: write failed: %s", name, strerror(err));
        tl_outfile_abort(o);
        return -1;
    }
    if (rename(o->tmp, o->path) != 0) {
        err = errno;
        tl_fail(e, "%s: cannot rename into place: %s", name, strerror(err));
        tl_outfile_abort(o);
        return -1;
    }
    free(o->tmp);
    o->tmp = NULL;
    tl_outfile_abort(o);
    return 0;
}

void tl_outfile_abort(tl_outfile *o)
{
    if (o->fp && !o->is_stdout)
        fclose(o->fp);
    o->is_special = 0;
    o->fp = NULL;
    if (o->tmp) {
        if (!o->keep_tmp)
            unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
    }
    free(o->path);
    o->path = NULL;
}
