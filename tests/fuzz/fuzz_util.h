/* Shared by the libFuzzer targets in tests/fuzz: helpers that hand fuzzed
 * bytes to library entry points that take a path or a C string. */
#ifndef TL_FUZZ_UTIL_H
#define TL_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Some readers take a path (they mmap or fopen it). A memfd is a regular
 * file without a disk behind it; /proc/self/fd/N reopens it by name. One
 * memfd per process, rewritten for each input. Returns the path, or NULL
 * when the kernel refuses (then the target skips the input). */
static inline const char *fuzz_memfd_path(const uint8_t *data, size_t n)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("tl-fuzz", 0);
        if (fd < 0)
            return NULL;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0)
        return NULL;
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, data + done, n - done, (off_t)done);
        if (w <= 0)
            return NULL;
        done += (size_t)w;
    }
    return path;
}

/* A NUL-terminated heap copy (for parsers that take C strings). */
static inline char *fuzz_cstr(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* The library's one-line error contract: a failing call leaves a message
 * without a newline. A violation aborts, so libFuzzer records the input. */
#define FUZZ_CHECK_MSG(err)                                                                 \
    do {                                                                                    \
        if (!(err).msg[0] || strchr((err).msg, '\n')) {                                     \
            fprintf(stderr, "fuzz: bad error message '%s'\n", (err).msg);                   \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

#define FUZZ_ASSERT(cond)                                                                   \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "fuzz: %s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

#endif
