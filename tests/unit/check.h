/* A minimal test harness: CHECK records a failure and goes on, so one run
 * shows every broken expectation; the process exits non-zero if any failed. */
#ifndef TL_CHECK_H
#define TL_CHECK_H

#include <stdio.h>
#include <math.h>

extern int check_passed, check_failed;
void check_record(int ok, const char *file, int line, const char *what);
int check_finish(const char *suite);

#define CHECK(cond) check_record(!!(cond), __FILE__, __LINE__, #cond)
#define CHECK_MSG(cond, ...) do { int ok_ = !!(cond); check_record(ok_, __FILE__, __LINE__, #cond); \
    if (!ok_) { fprintf(stderr, "    "); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } } while (0)
#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); int ok_ = fabs(a_ - b_) <= (tol); \
    check_record(ok_, __FILE__, __LINE__, #a " ~ " #b); \
    if (!ok_) fprintf(stderr, "    %.9g vs %.9g (tol %g)\n", a_, b_, (double)(tol)); } while (0)

#endif
