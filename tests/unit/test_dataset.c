/* Data sets: class-folder trees, flat folders, manifests, single images,
 * all built in a fresh temporary folder. */
#include "check.h"
#include "io/dataset.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];

static const char *at(const char *rel)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
    return buf[k];
}

static void mkdirs(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    for (char *s = p + strlen(root) + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0755);
            *s = '/';
        }
    mkdir(p, 0755);
}

static void touch(const char *rel, const char *text)
{
    FILE *f = fopen(at(rel), "wb");
    if (!f) {
        perror(at(rel));
        exit(1);
    }
    if (text)
        fputs(text, f);
    fclose(f);
}

static int find(const tl_dataset *d, const char *path)
{
    for (int64_t i = 0; i < d->n; i++)
        if (!strcmp(d->items[i].path, path))
            return (int)i;
    return -1;
}

static void test_names(void)
{
    static const char *yes[] = {"a.jpg", "a.JPG", "b.jpeg", "c.png", "d.PnG", "e.bmp", "f.ppm", "g.pgm", "h.pnm",
                                "i.jpe", "x.y.jpg", ".jpg"};
    static const char *no[] = {"a", "a.txt", "jpg", "a.jpg.txt", "a.gif", "a.tiff", "a.", "a.jp", "a.webp", ""};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        CHECK_MSG(tl_is_image_name(yes[i]), "%s", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        CHECK_MSG(!tl_is_image_name(no[i]), "%s", no[i]);
}

static void test_folders(void)
{
    tl_err e = {0};
    mkdirs("train/bees/sub/deeper");
    mkdirs("train/ants");
    mkdirs("train/.git");
    mkdirs("train/cats");       /* a class with no images (yet) */
    touch("train/bees/b2.PNG", "x");
    touch("train/bees/b1.jpg", "x");
    touch("train/bees/sub/deeper/b3.jpeg", "x");
    touch("train/bees/sub/b0.bmp", "x");
    touch("train/bees/.hidden.jpg", "x");
    touch("train/bees/notes.txt", "x");
    touch("train/ants/a1.jpg", "x");
    touch("train/.git/x.jpg", "x");
    touch("train/stray.jpg", "x"); /* beside class folders: not a sample */
    touch("train/README", "x");

    tl_dataset d;
    int rc = tl_dataset_open(at("train"), &d, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0) {
        CHECK_MSG(d.nclasses == 3, "%d classes", d.nclasses);
        if (d.nclasses == 3)
            CHECK(!strcmp(d.classes[0], "ants") && !strcmp(d.classes[1], "bees") && !strcmp(d.classes[2], "cats"));
        CHECK_MSG(d.n == 5, "%lld samples", (long long)d.n);
        /* sorted by class, then path within it (byte order: upper case first) */
        static const char *order[] = {"train/ants/a1.jpg", "train/bees/b1.jpg", "train/bees/b2.PNG",
                                      "train/bees/sub/b0.bmp", "train/bees/sub/deeper/b3.jpeg"};
        static const int lab[] = {0, 1, 1, 1, 1};
        for (int i = 0; i < 5 && i < d.n; i++) {
            CHECK_MSG(!strcmp(d.items[i].path, at(order[i])), "item %d: %s", i, d.items[i].path);
            CHECK(d.items[i].label == lab[i]);
        }
        CHECK(tl_dataset_class(&d, "bees") == 1 && tl_dataset_class(&d, "wasps") == -1);
        CHECK(find(&d, at("train/bees/.hidden.jpg")) < 0 && find(&d, at("train/.git/x.jpg")) < 0);
        CHECK(find(&d, at("train/stray.jpg")) < 0);
        tl_dataset_free(&d);
        CHECK(d.n == 0 && d.items == NULL && d.classes == NULL);
    }
    /* a trailing slash on the root gives the same samples */
    char slash[512];
    snprintf(slash, sizeof slash, "%s/", at("train"));
    rc = tl_dataset_open(slash, &d, &e);
    CHECK_MSG(rc == 0 && d.n == 5, "%s", e.msg);
    if (rc == 0)
        tl_dataset_free(&d);

    /* a flat folder of images: unlabelled, sorted */
    mkdirs("flat");
    touch("flat/z.jpg", "x");
    touch("flat/a.bmp", "x");
    touch("flat/readme.md", "x");
    touch("flat/.x.png", "x");
    rc = tl_dataset_open(at("flat"), &d, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0) {
        CHECK(d.n == 2 && d.nclasses == 0 && d.items[0].label == -1 && d.items[1].label == -1);
        CHECK(!strcmp(d.items[0].path, at("flat/a.bmp")) && !strcmp(d.items[1].path, at("flat/z.jpg")));
        tl_dataset_free(&d);
    }

    /* errors */
    mkdirs("empty");
    CHECK(tl_dataset_open(at("empty"), &d, &e) < 0);
    CHECK_MSG(strstr(e.msg, "no images found") && strstr(e.msg, at("empty")), "message: %s", e.msg);
    mkdirs("textonly");
    touch("textonly/a.txt", "x");
    CHECK(tl_dataset_open(at("textonly"), &d, &e) < 0 && strstr(e.msg, "no images found"));
    mkdirs("emptyclasses/a");
    mkdirs("emptyclasses/b");
    CHECK(tl_dataset_open(at("emptyclasses"), &d, &e) < 0 && strstr(e.msg, "no images found"));
    CHECK(tl_dataset_open(at("nonexistent"), &d, &e) < 0);
    CHECK_MSG(strstr(e.msg, "nonexistent") && strstr(e.msg, "No such file"), "message: %s", e.msg);
    CHECK(d.n == 0 && d.items == NULL);

    /* a single image */
    rc = tl_dataset_open(at("train/ants/a1.jpg"), &d, &e);
    CHECK(rc == 0 && d.n == 1 && d.items[0].label == -1 && d.nclasses == 0 &&
          !strcmp(d.items[0].path, at("train/ants/a1.jpg")));
    if (rc == 0)
        tl_dataset_free(&d);
    CHECK(tl_dataset_open(at("train/ants/missing.jpg"), &d, &e) < 0);
    CHECK_MSG(strstr(e.msg, "missing.jpg"), "message: %s", e.msg);
}

static void test_manifests(void)
{
    tl_err e = {0};
    mkdirs("lists");
    touch("lists/m.tsv", "# a comment\n"
                         "../train/ants/a1.jpg\tants\n"
                         "\n"
                         "/abs/b.jpg\tbees\r\n"
                         "nolabel.jpg\n"
                         "emptylabel.jpg\t\n"
                         "sp ace/\xC3\xA9.png\tzebra fish\n"
                         "crlf-only.jpg\r\n");
    tl_dataset d;
    int rc = tl_dataset_open(at("lists/m.tsv"), &d, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc == 0) {
        CHECK(d.n == 6 && d.nclasses == 3);
        if (d.nclasses == 3)
            CHECK(!strcmp(d.classes[0], "ants") && !strcmp(d.classes[1], "bees") &&
                  !strcmp(d.classes[2], "zebra fish"));
        static const char *paths[] = {"lists/../train/ants/a1.jpg", NULL, "lists/nolabel.jpg", "lists/emptylabel.jpg",
                                      "lists/sp ace/\xC3\xA9.png", "lists/crlf-only.jpg"};
        static const int labels[] = {0, 1, -1, -1, 2, -1};
        for (int i = 0; i < 6 && i < d.n; i++) {
            const char *want = paths[i] ? at(paths[i]) : "/abs/b.jpg";
            CHECK_MSG(!strcmp(d.items[i].path, want), "item %d: '%s', want '%s'", i, d.items[i].path, want);
            CHECK_MSG(d.items[i].label == labels[i], "item %d: label %d", i, d.items[i].label);
        }
        tl_dataset_free(&d);
    }

    /* a manifest in the current folder: paths stay relative */
    char cwd[512];
    if (getcwd(cwd, sizeof cwd) && chdir(at("lists")) == 0) {
        rc = tl_dataset_open("m.tsv", &d, &e);
        CHECK(rc == 0 && d.n == 6 && !strcmp(d.items[2].path, "nolabel.jpg"));
        if (rc == 0)
            tl_dataset_free(&d);
        rc = tl_dataset_open("./m.tsv", &d, &e);
        CHECK(rc == 0 && d.n == 6 && (!strcmp(d.items[2].path, "./nolabel.jpg") ||
                                      !strcmp(d.items[2].path, "nolabel.jpg")));
        if (rc == 0)
            tl_dataset_free(&d);
        CHECK(chdir(cwd) == 0);
    }

    /* from a stream, with an explicit base folder (the root too) */
    static const char text[] = "x.jpg\tb\ny.jpg\ta\n";
    FILE *f = fmemopen((void *)text, sizeof text - 1, "r");
    CHECK(tl_dataset_read_manifest(f, "list", "/", &d, &e) == 0);
    CHECK(d.n == 2 && !strcmp(d.items[0].path, "/x.jpg") && d.items[0].label == 1 && d.items[1].label == 0);
    tl_dataset_free(&d);
    fclose(f);
    f = fmemopen((void *)text, sizeof text - 1, "r");
    CHECK(tl_dataset_read_manifest(f, "list", NULL, &d, &e) == 0 && !strcmp(d.items[1].path, "y.jpg"));
    tl_dataset_free(&d);
    fclose(f);
    f = fmemopen((void *)text, sizeof text - 1, "r");
    CHECK(tl_dataset_read_manifest(f, "list", "base/dir/", &d, &e) == 0 && !strcmp(d.items[0].path, "base/dir/x.jpg"));
    tl_dataset_free(&d);
    fclose(f);

    /* an empty manifest is an empty set */
    touch("lists/empty.tsv", "# nothing\n\n");
    rc = tl_dataset_open(at("lists/empty.tsv"), &d, &e);
    CHECK(rc == 0 && d.n == 0 && d.nclasses == 0);
    if (rc == 0)
        tl_dataset_free(&d);

    /* errors name the file and line */
    touch("lists/bad.tsv", "a.jpg\tx\n\tx\n");
    CHECK(tl_dataset_open(at("lists/bad.tsv"), &d, &e) < 0);
    CHECK_MSG(strstr(e.msg, "bad.tsv: line 2: empty path"), "message: %s", e.msg);
    CHECK(d.n == 0 && d.items == NULL);
    FILE *g = fopen(at("lists/nul.tsv"), "wb");
    fwrite("a.jpg\n b\0c.jpg\n", 1, 15, g);
    fclose(g);
    CHECK(tl_dataset_open(at("lists/nul.tsv"), &d, &e) < 0);
    CHECK_MSG(strstr(e.msg, "nul.tsv: line 2: NUL byte"), "message: %s", e.msg);
    CHECK(tl_dataset_open(at("lists/none.tsv"), &d, &e) < 0 && strstr(e.msg, "none.tsv"));

    /* a third column is refused, not dropped */
    touch("lists/extra.tsv", "a.jpg\tx\nb.jpg\tx\t0.9\n");
    CHECK(tl_dataset_open(at("lists/extra.tsv"), &d, &e) < 0);
    CHECK_MSG(strstr(e.msg, "extra.tsv: line 2: 3 tab-separated columns"), "message: %s", e.msg);
    CHECK(d.n == 0 && d.items == NULL);

    /* a label after a space instead of a tab, in a labelled manifest, before or after the labelled lines */
    touch("lists/space.tsv", "a.jpg\tx\nb.jpg y\n");
    CHECK(tl_dataset_open(at("lists/space.tsv"), &d, &e) < 0);
    CHECK_MSG(strstr(e.msg, "space.tsv: line 2: no tab between path and label in 'b.jpg y'"), "message: %s", e.msg);
    touch("lists/space1.tsv", "b.jpg y\na.jpg\tx\n");
    CHECK(tl_dataset_open(at("lists/space1.tsv"), &d, &e) < 0);
    CHECK_MSG(strstr(e.msg, "space1.tsv: line 1: no tab"), "message: %s", e.msg);
    /* ... but a file whose name holds a space is taken, and so is a list of paths alone */
    touch("lists/b.jpg y", "");
    rc = tl_dataset_open(at("lists/space.tsv"), &d, &e);
    CHECK_MSG(rc == 0 && d.n == 2 && d.items[1].label == -1, "%s", e.msg);
    if (rc == 0)
        tl_dataset_free(&d);
    touch("lists/paths.txt", "c d.jpg\ne f.jpg\n");
    rc = tl_dataset_open(at("lists/paths.txt"), &d, &e);
    CHECK_MSG(rc == 0 && d.n == 2, "%s", e.msg);
    if (rc == 0)
        tl_dataset_free(&d);
}

/* Multi-label manifests: sets, the empty set, unlabelled lines, repeats,
 * and the labels that cannot be told apart from a name holding ','. */
static void test_multilabel(void)
{
    tl_dataset d;
    tl_err e;
    touch("lists/ml.tsv", "# comment\na.jpg\tsky,sea\nb.jpg\tsea\nc.jpg\t\nd.jpg\ne.jpg\tboat,sea,boat,sky\n");
    int rc = tl_dataset_open_flags(at("lists/ml.tsv"), TL_DS_MULTILABEL, &d, &e);
    CHECK_MSG(rc == 0, "%s", rc ? e.msg : "");
    if (rc == 0) {
        CHECK(d.multilabel && d.n == 5 && d.nclasses == 3);
        CHECK(!strcmp(d.classes[0], "boat") && !strcmp(d.classes[1], "sea") && !strcmp(d.classes[2], "sky"));
        CHECK(d.items[0].label == 2 && d.items[0].labels[0] == 1 && d.items[0].labels[1] == 2);
        CHECK(d.items[1].label == 1 && d.items[1].labels[0] == 1);
        CHECK(d.items[2].label == 0 && d.items[2].labels == NULL); /* labelled, none of the classes */
        CHECK(d.items[3].label == -1 && d.items[3].labels == NULL); /* no label column: unlabelled */
        CHECK(d.items[4].label == 3 && d.items[4].labels[0] == 0 && d.items[4].labels[2] == 2);
        tl_dataset_free(&d);
    }
    /* the same file read as single-label: "sky,sea" is one class */
    rc = tl_dataset_open(at("lists/ml.tsv"), &d, &e);
    CHECK(rc == 0 && !d.multilabel && d.items[0].label >= 0 && d.items[2].label == -1);
    if (rc == 0) {
        CHECK(!strcmp(d.classes[d.items[0].label], "sky,sea"));
        tl_dataset_free(&d);
    }
    static const char *const bad[][2] = {
        {"a.jpg\tx\nb.jpg\ttench, Tinca tinca\n", "ml_bad1.tsv: line 2: label ' Tinca tinca' begins or ends with a space"},
        {"a.jpg\tx,,y\n", "ml_bad2.tsv: line 1: empty label in 'x,,y'"},
        {"a.jpg\tx\nb.jpg\tx,\n", "ml_bad3.tsv: line 2: empty label"},
        {"a.jpg\t,x\n", "ml_bad4.tsv: line 1: empty label"},
    };
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "lists/ml_bad%d.tsv", i + 1);
        touch(name, bad[i][0]);
        CHECK(tl_dataset_open_flags(at(name), TL_DS_MULTILABEL, &d, &e) < 0);
        CHECK_MSG(strstr(e.msg, bad[i][1]), "message: %s", e.msg);
        CHECK(d.n == 0 && d.items == NULL);
    }
    /* class folders: one label each; a folder name with ',' is refused */
    rc = tl_dataset_open_flags(at("train"), TL_DS_MULTILABEL, &d, &e);
    CHECK(rc == 0 && d.multilabel && d.n > 0 && d.items[0].label == 1 && d.items[0].labels[0] == 0);
    if (rc == 0)
        tl_dataset_free(&d);
    mkdir(at("commas"), 0755);
    mkdir(at("commas/a,b"), 0755);
    touch("commas/a,b/x.jpg", "");
    CHECK(tl_dataset_open_flags(at("commas"), TL_DS_MULTILABEL, &d, &e) < 0 && strstr(e.msg, "holds ','"));
    CHECK(tl_dataset_open(at("commas"), &d, &e) == 0 && d.n == 1);
    tl_dataset_free(&d);
}

static void cleanup(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/tl-ds-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_names();
    test_folders();
    test_manifests();
    test_multilabel();
    cleanup();
    return check_finish("dataset");
}
