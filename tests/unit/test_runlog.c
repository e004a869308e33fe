/* Training-log reader: both log generations (with and without a start
 * line), extraction lines, resumed runs, the forgiving parts (unknown keys
 * and phases, nan/inf, CRLF, no validation) and the strict ones (lines that
 * are not JSON, wrong types, limits), then hostile bytes that must neither
 * crash nor leak. */
#include "check.h"
#include "report/runlog.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse(const char *s, const char *fallback, tl_runlog *r, tl_err *e)
{
    return tl_runlog_parse(s, strlen(s), fallback, r, e);
}

/* s must be rejected with a message containing want. */
static void bad(const char *s, const char *want)
{
    tl_err e = {0};
    tl_runlog r;
    int rc = parse(s, "x", &r, &e);
    CHECK_MSG(rc < 0, "accepted: %s", s);
    CHECK_MSG(rc >= 0 || strstr(e.msg, want), "message '%s', wanted '%s'", e.msg, want);
    CHECK(r.name == NULL && r.epochs == NULL && r.nepochs == 0); /* left clean */
    tl_runlog_free(&r);
}

static void test_new_format(void)
{
    const char *log =
        "{\"phase\":\"extract\",\"data\":\"d/train\",\"images\":245,\"seconds\":12.5,\"images_per_s\":19.6}\n"
        "{\"phase\":\"extract\",\"data\":\"d/val\",\"images\":153,\"seconds\":7.5}\n"
        "{\"phase\":\"start\",\"run\":\"feat\",\"tool\":\"tl-finetune\",\"init\":\"features\",\"model\":\"m.st\","
        "\"arch\":\"mobilenet_v2\",\"strategy\":\"features+logreg\",\"train\":\"d/train\",\"val\":\"d/val\","
        "\"train_images\":245,\"val_images\":153,\"classes\":2,\"epochs\":1,\"batch\":32,\"seed\":1,\"threads\":2,"
        "\"params\":2226434,\"trainable_params\":2562,\"someday\":{\"a\":[1,{\"b\":null}]}}\n"
        "{\"epoch\":1,\"phase\":\"train\",\"loss\":0.05,\"accuracy\":0.99,\"lr\":[0.1],\"seconds\":0.4,"
        "\"images_per_s\":612.5,\"trainable_params\":2562}\n"
        "{\"phase\":\"someday\",\"epoch\":\"not a number, but an unknown phase is not read\"}\n"
        "{\"epoch\":1,\"phase\":\"val\",\"loss\":0.16,\"accuracy\":0.948,\"seconds\":0.1,\"images_per_s\":1530,"
        "\"best\":true}\n"
        "{\"phase\":\"best\",\"epoch\":1,\"loss\":0.16,\"accuracy\":0.948,\"epochs_run\":1,\"stopped_early\":true,"
        "\"seconds\":0.6}";
    tl_err e = {0};
    tl_runlog r;
    CHECK_MSG(parse(log, "fallback", &r, &e) == 0, "%s", e.msg);
    CHECK(r.name && !strcmp(r.name, "feat"));
    CHECK(r.has_start && r.init && !strcmp(r.init, "features") && r.strategy && !strcmp(r.strategy, "features+logreg"));
    CHECK(r.arch && !strcmp(r.arch, "mobilenet_v2") && r.model && !strcmp(r.model, "m.st"));
    CHECK(r.train_path && !strcmp(r.train_path, "d/train") && r.val_path && !strcmp(r.val_path, "d/val"));
    CHECK(r.train_images == 245 && r.val_images == 153 && r.classes == 2 && r.epochs_planned == 1);
    CHECK(r.batch == 32 && r.seed == 1 && r.threads == 2 && r.params == 2226434 && r.trainable_params == 2562);
    CHECK(r.nextract == 2);
    CHECK_NEAR(r.extract_seconds, 20.0, 1e-12);
    CHECK(r.nepochs == 1 && r.epochs[0].epoch == 1);
    CHECK(r.epochs[0].train.present && r.epochs[0].val.present);
    CHECK_NEAR(r.epochs[0].train.accuracy, 0.99, 1e-12);
    CHECK_NEAR(r.epochs[0].val.loss, 0.16, 1e-12);
    CHECK_NEAR(r.epochs[0].val.images_per_s, 1530, 1e-9);
    CHECK(r.epochs[0].trainable_params == 2562);
    CHECK(r.has_best && r.best_epoch == 1 && r.epochs_run == 1 && r.stopped_early);
    CHECK_NEAR(r.best_accuracy, 0.948, 1e-12);
    CHECK(r.repeated == 0 && r.diverged_epoch == -1);
    tl_runlog_free(&r);
    CHECK(r.name == NULL && r.nepochs == 0);
}

/* An older log: no start line, epochs out of order, a resumed epoch whose
 * later records win, CRLF line ends, blank lines, no best line. */
static void test_old_resumed(void)
{
    const char *log = "\r\n"
                      "{\"epoch\":2,\"phase\":\"train\",\"loss\":0.9,\"accuracy\":0.1,\"seconds\":99}\r\n"
                      "{\"epoch\":1,\"phase\":\"train\",\"loss\":0.6,\"accuracy\":0.7,\"seconds\":10}\r\n"
                      "  \t \n"
                      "{\"epoch\":1,\"phase\":\"val\",\"loss\":0.5,\"accuracy\":0.75,\"seconds\":2}\n"
                      "{\"epoch\":2,\"phase\":\"val\",\"loss\":0.9,\"accuracy\":0.2,\"seconds\":3}\n"
                      "{\"epoch\":2,\"phase\":\"train\",\"loss\":0.4,\"accuracy\":0.8,\"seconds\":11}\n"
                      "{\"epoch\":2,\"phase\":\"val\",\"loss\":0.45,\"accuracy\":0.78,\"seconds\":2}\n"
                      "{\"epoch\":0,\"phase\":\"val\",\"loss\":0.7,\"accuracy\":0.5}\n";
    tl_err e = {0};
    tl_runlog r;
    CHECK_MSG(parse(log, "old", &r, &e) == 0, "%s", e.msg);
    CHECK(r.name && !strcmp(r.name, "old"));
    CHECK(!r.has_start && !r.has_best && r.init == NULL && r.val_images == -1);
    CHECK(r.nepochs == 3);
    CHECK(r.epochs[0].epoch == 0 && r.epochs[1].epoch == 1 && r.epochs[2].epoch == 2);
    CHECK(!r.epochs[0].train.present && r.epochs[0].val.present && isnan(r.epochs[0].train.loss));
    CHECK(isnan(r.epochs[0].val.seconds));
    CHECK_NEAR(r.epochs[2].train.accuracy, 0.8, 1e-12);
    CHECK_NEAR(r.epochs[2].train.seconds, 11, 1e-12);
    CHECK_NEAR(r.epochs[2].val.accuracy, 0.78, 1e-12);
    CHECK(r.repeated == 2);
    CHECK(r.best_epoch == -1 && isnan(r.best_accuracy));
    tl_runlog_free(&r);
}

static void test_lenient(void)
{
    tl_err e = {0};
    tl_runlog r;
    /* Empty input: a run with nothing in it. */
    CHECK(parse("", NULL, &r, &e) == 0 && r.nepochs == 0 && r.name && !strcmp(r.name, "run"));
    tl_runlog_free(&r);
    /* No validation: still a run. An empty "run" falls back. */
    CHECK(parse("{\"phase\":\"start\",\"run\":\"\"}\n{\"epoch\":1,\"phase\":\"train\",\"loss\":1}", "fb", &r, &e) == 0);
    CHECK(r.name && !strcmp(r.name, "fb") && r.nepochs == 1 && !r.epochs[0].val.present);
    tl_runlog_free(&r);
    /* A run named after its checkpoint is named after the file's stem. */
    CHECK(parse("{\"phase\":\"start\",\"run\":\"out/full.safetensors\"}", "fb", &r, &e) == 0);
    CHECK(r.name && !strcmp(r.name, "full"));
    tl_runlog_free(&r);
    /* nan/inf as printf writes them (a diverged loss); strings untouched. */
    const char *nan_log =
        "{\"epoch\":1,\"phase\":\"train\",\"loss\":1.5,\"accuracy\":0.4,\"note\":\"nan inf -nan\"}\n"
        "{\"epoch\":2,\"phase\":\"train\",\"loss\":-nan,\"accuracy\":0.1,\"seconds\":inf}\n"
        "{\"epoch\":3,\"phase\":\"train\",\"loss\":NaN,\"accuracy\":0.1,\"seconds\":-Infinity}\n"
        "{\"epoch\":3,\"phase\":\"val\",\"loss\":null,\"accuracy\":0.1,\"infinite\":\"x\"}\n";
    CHECK_MSG(parse(nan_log, "d", &r, &e) == 0, "%s", e.msg);
    CHECK(r.nepochs == 3 && isnan(r.epochs[1].train.loss) && isnan(r.epochs[1].train.seconds));
    CHECK_NEAR(r.epochs[1].train.accuracy, 0.1, 1e-12);
    CHECK(isnan(r.epochs[2].train.loss) && isnan(r.epochs[2].val.loss));
    CHECK(r.diverged_epoch == 2);
    tl_runlog_free(&r);
    /* A null loss the writer chose is missing, not divergence. */
    CHECK(parse("{\"epoch\":4,\"phase\":\"val\",\"loss\":null}", "d", &r, &e) == 0 && r.diverged_epoch == -1);
    tl_runlog_free(&r);
    /* A line without a phase is not a record we know. */
    CHECK(parse("{\"epoch\":1}\n{}\n{\"phase\":7}", "d", &r, &e) == 0 && r.nepochs == 0);
    tl_runlog_free(&r);
    /* A huge number is out of range, not a crash. */
    CHECK(parse("{\"epoch\":1,\"phase\":\"val\",\"accuracy\":1e999}", "d", &r, &e) == 0 && isnan(r.epochs[0].val.accuracy));
    tl_runlog_free(&r);
}

static void test_errors(void)
{
    bad("{\"epoch\":1,\"phase\":\"train\"}\n{\"epoch\":2,\"phase\":\"train\"", "line 2: not JSON");
    bad("{\"epoch\":1,\"phase\":\"train\"}\n\n[1,2]\n", "line 3: not a JSON object");
    bad("epoch 1 loss 0.5\n", "line 1: not JSON");
    bad("{\"phase\":\"train\",\"loss\":0.1}", "line 1: train record without an epoch");
    bad("{\"phase\":\"val\",\"epoch\":1.5}", "\"epoch\" is not a whole number");
    bad("{\"phase\":\"val\",\"epoch\":-1}", "\"epoch\" is not a whole number");
    bad("{\"phase\":\"val\",\"epoch\":99999999}", "implausibly large");
    bad("{\"phase\":\"train\",\"epoch\":1,\"loss\":\"low\"}", "line 1: \"loss\" is not a number");
    bad("{\"phase\":\"start\",\"run\":5}", "\"run\" is not a string");
    bad("{\"phase\":\"start\",\"val_images\":-3}", "\"val_images\" is not a whole number");
    bad("{\"phase\":\"best\",\"stopped_early\":\"no\"}", "\"stopped_early\" is not true or false");
    /* a log from a newer tl is refused before anything else is read */
    bad("{\"phase\":\"start\",\"format\":2,\"run\":5}", "line 1: log version 2 was written by a newer tl");
    bad("{\"phase\":\"start\",\"format\":\"1\"}", "line 1: log version is not a whole number");
    bad("{\"phase\":\"start\",\"format\":1.5}", "line 1: log version is not a whole number");
    bad("{\"phase\":\"start\",\"format\":1}\n{\"phase\":\"extract\",\"format\":3}", "line 2: log version 3 was written by a newer tl");
    bad("{\"phase\":\"extract\",\"seconds\":[1]}", "\"seconds\" is not a number");
    /* An embedded NUL byte inside the length is not JSON. */
    {
        tl_err e = {0};
        tl_runlog r;
        static const char s[] = "{\"phase\":\"start\"}\n{\0}\n";
        CHECK(tl_runlog_parse(s, sizeof s - 1, "x", &r, &e) < 0 && strstr(e.msg, "line 2"));
        tl_runlog_free(&r);
    }
    /* A line longer than the limit. */
    {
        size_t n = TL_RUNLOG_MAX_LINE + 100;
        char *s = malloc(n + 1);
        memset(s, ' ', n);
        s[0] = '{';
        s[n - 1] = '}';
        s[n] = '\0';
        tl_err e = {0};
        tl_runlog r;
        CHECK(parse(s, "x", &r, &e) < 0 && strstr(e.msg, "line 1: longer than"));
        tl_runlog_free(&r);
        free(s);
    }
    /* Too many epoch records. */
    {
        const char *rec = "{\"phase\":\"val\",\"epoch\":1}\n";
        size_t rl = strlen(rec), n = (size_t)TL_RUNLOG_MAX_RECORDS + 1;
        char *s = malloc(rl * n + 1);
        for (size_t i = 0; i < n; i++)
            memcpy(s + i * rl, rec, rl);
        s[rl * n] = '\0';
        tl_err e = {0};
        tl_runlog r;
        CHECK(parse(s, "x", &r, &e) < 0 && strstr(e.msg, "more than 100000 epoch records"));
        /* one fewer is accepted, and collapses to one epoch */
        s[rl * (n - 1)] = '\0';
        CHECK(parse(s, "x", &r, &e) == 0 && r.nepochs == 1 && r.repeated == TL_RUNLOG_MAX_RECORDS - 1);
        tl_runlog_free(&r);
        free(s);
    }
}

static void test_read(void)
{
    char dir[] = "/tmp/tl_runlog_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/scratch-30.jsonl", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"epoch\":1,\"phase\":\"val\",\"accuracy\":0.5}\n", f);
    fclose(f);
    tl_err e = {0};
    tl_runlog r;
    CHECK_MSG(tl_runlog_read(path, &r, &e) == 0, "%s", e.msg);
    CHECK(r.name && !strcmp(r.name, "scratch-30"));
    CHECK(tl_runlog_rename(&r, "other", &e) == 0 && !strcmp(r.name, "other"));
    tl_runlog_free(&r);
    f = fopen(path, "w");
    fputs("{\"epoch\":1,\"phase\":\"val\"}\nnope\n", f);
    fclose(f);
    CHECK(tl_runlog_read(path, &r, &e) < 0);
    CHECK_MSG(strstr(e.msg, "scratch-30.jsonl: line 2: not JSON") != NULL, "%s", e.msg);
    unlink(path);
    CHECK(tl_runlog_read(path, &r, &e) < 0 && strstr(e.msg, "scratch-30.jsonl: No such file"));
    rmdir(dir);
}

/* Mutated logs: flipped, dropped and duplicated bytes. Nothing may crash
 * (ASan/UBSan builds run this too); whatever is accepted must be sane. */
static void test_hostile(void)
{
    const char *seed =
        "{\"phase\":\"start\",\"run\":\"r\",\"init\":\"scratch\",\"val_images\":10,\"s\":\"a\\\"b\\u00e9\"}\n"
        "{\"phase\":\"extract\",\"seconds\":1.5}\n"
        "{\"epoch\":1,\"phase\":\"train\",\"loss\":0.5,\"accuracy\":0.8,\"lr\":[0.1,0.01],\"seconds\":3}\n"
        "{\"epoch\":1,\"phase\":\"val\",\"loss\":nan,\"accuracy\":0.7,\"seconds\":1,\"best\":true}\n"
        "{\"phase\":\"best\",\"epoch\":1,\"loss\":0.4,\"accuracy\":0.7,\"epochs_run\":1,\"stopped_early\":false}\n";
    size_t n = strlen(seed);
    char *buf = malloc(2 * n + 16);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    int accepted = 0;
    for (int it = 0; it < 20000; it++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int op = (int)(x % 512);
            if (op == 0)
                continue; /* drop */
            buf[m++] = op == 1 ? (char)(x >> 8) : seed[i];
            if (op == 2)
                buf[m++] = seed[i];
        }
        tl_err e = {0};
        tl_runlog r;
        if (tl_runlog_parse(buf, m, "h", &r, &e) == 0) {
            accepted++;
            CHECK(r.name != NULL);
            for (int i = 1; i < r.nepochs; i++)
                if (r.epochs[i].epoch <= r.epochs[i - 1].epoch)
                    CHECK(!"epochs out of order");
        } else if (!strstr(e.msg, "line ")) {
            CHECK_MSG(0, "error without a line number: %s", e.msg);
        }
        tl_runlog_free(&r);
    }
    CHECK_MSG(accepted > 100, "%d accepted", accepted); /* some mutants stay valid */
    free(buf);
}

int main(void)
{
    test_new_format();
    test_old_resumed();
    test_lenient();
    test_errors();
    test_read();
    test_hostile();
    return check_finish("runlog");
}
