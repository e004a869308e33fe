#include "check.h"

int check_passed, check_failed;

void check_record(int ok, const char *file, int line, const char *what)
{
    if (ok) {
        check_passed++;
    } else {
        check_failed++;
        fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
    }
}

int check_finish(const char *suite)
{
    printf("%s: %d checks passed, %d failed\n", suite, check_passed, check_failed);
    return check_failed ? 1 : 0;
}
