/* Plots: nice ticks and their labels, the SVG writer (well-formed XML,
 * escaped text, every series named), the PNG path (decoded back with our
 * own decoder: size and colours at known places), and the error paths:
 * bad names, bad panels, empty and all-NaN data. */
#include "check.h"
#include "io/image.h"
#include "report/plot_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
    return buf[i];
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = 0;
    fclose(f);
    return s;
}

/* ---- ticks ---- */

static void labels_of(const pl_ticks *t, char out[][64])
{
    for (int i = 0; i < t->n; i++)
        pl_tick_label(t, t->v[i], out[i], 64);
}

static void test_ticks_cases(void)
{
    pl_ticks t;
    char lb[PL_MAX_TICKS][64];

    pl_ticks_make(0, 1, 1, &t);
    labels_of(&t, lb);
    CHECK_NEAR(t.step, 0.2, 1e-12);
    CHECK(t.n == 6 && t.lo == 0 && fabs(t.hi - 1) < 1e-12);
    CHECK_MSG(strcmp(lb[0], "0.0") == 0 && strcmp(lb[3], "0.6") == 0 && strcmp(lb[5], "1.0") == 0, "%s %s %s",
              lb[0], lb[3], lb[5]);

    pl_ticks_make(0.93, 0.97, 1, &t);
    labels_of(&t, lb);
    CHECK_NEAR(t.step, 0.01, 1e-12);
    CHECK(t.n == 5);
    CHECK_MSG(strcmp(lb[0], "0.93") == 0 && strcmp(lb[2], "0.95") == 0 && strcmp(lb[4], "0.97") == 0,
              "%s %s %s", lb[0], lb[2], lb[4]);

    pl_ticks_make(0, 1234, 1, &t);
    labels_of(&t, lb);
    CHECK_MSG(t.step == 200 || t.step == 250 || t.step == 500, "step %g", t.step);
    CHECK(t.n >= 4 && t.n <= 8 && t.lo <= 0 && t.hi >= 1234);
    for (int i = 0; i < t.n; i++)
        CHECK_MSG(!strchr(lb[i], '.') && !strchr(lb[i], 'e'), "label %s", lb[i]);

    /* A single value gets a range around it. */
    pl_ticks_make(0.95, 0.95, 1, &t);
    CHECK(t.lo < 0.95 && t.hi > 0.95 && t.n >= 4 && t.n <= 8);
    pl_ticks_make(0, 0, 1, &t);
    CHECK(t.lo <= 0 && t.hi > 0 && t.n >= 4);

    pl_ticks_make(-3.2, -0.1, 1, &t);
    labels_of(&t, lb);
    CHECK(t.lo <= -3.2 && t.hi >= -0.1 && t.n >= 4 && t.n <= 8);
    CHECK_MSG(lb[0][0] == '-', "%s", lb[0]);
    for (int i = 0; i < t.n; i++)
        CHECK_MSG(strcmp(lb[i], "-0") != 0 && strncmp(lb[i], "-0.0", 5) != 0, "label %s", lb[i]);
    CHECK_MSG(strcmp(lb[t.n - 1], "0") == 0, "last %s", lb[t.n - 1]);

    /* Not expanded: the range stays, ticks fall inside. */
    pl_ticks_make(0.5, 30, 0, &t);
    CHECK(t.lo == 0.5 && t.hi == 30 && t.v[0] >= 0.5 && t.v[t.n - 1] <= 30);

    /* Nothing finite: [0, 1]. Reversed: sorted. */
    pl_ticks_make(NAN, INFINITY, 1, &t);
    CHECK(t.lo == 0 && t.hi == 1);
    pl_ticks_make(10, 0, 1, &t);
    CHECK(t.lo == 0 && t.hi == 10);

    /* Huge range: exponent notation, still distinct. */
    pl_ticks_make(0, 5e6, 1, &t);
    labels_of(&t, lb);
    CHECK_MSG(strcmp(lb[1], "1e+06") == 0, "%s", lb[1]);
    CHECK(strcmp(lb[0], "0") == 0);
    /* 10 000 stays plain. */
    pl_ticks_make(0, 10000, 1, &t);
    labels_of(&t, lb);
    CHECK_MSG(strcmp(lb[t.n - 1], "10000") == 0, "%s", lb[t.n - 1]);
}

/* Random ranges: 4..8 ticks inside the axis (3..10 for a fixed range,
 * where 1-2-5 steps cannot always give 4..8), labels distinct and exact. */
static void test_ticks_random(void)
{
    tl_rng r;
    tl_rng_seed(&r, 42);
    int bad = 0;
    for (int it = 0; it < 2000; it++) {
        double scale = pow(10, (double)tl_rng_below(&r, 16) - 8);
        double a = (tl_rng_uniform(&r) * 2 - 1) * scale, b = a + tl_rng_uniform(&r) * scale + 1e-3 * scale;
        pl_ticks t;
        pl_ticks_make(a, b, it % 2, &t);
        char lb[PL_MAX_TICKS][64];
        labels_of(&t, lb);
        int ok = (it % 2 ? t.n >= 4 && t.n <= 8 : t.n >= 3 && t.n <= 10) && t.lo <= a + 1e-9 * scale && t.hi >= b - 1e-9 * scale;
        for (int i = 0; i < t.n; i++) {
            ok &= t.v[i] >= t.lo - t.step * 1e-6 && t.v[i] <= t.hi + t.step * 1e-6;
            ok &= fabs(strtod(lb[i], NULL) - t.v[i]) <= t.step * 1e-3;
            if (i)
                ok &= strcmp(lb[i], lb[i - 1]) != 0;
        }
        if (!ok && bad++ < 3)
            fprintf(stderr, "    [%g, %g] expand=%d: n=%d lo=%g hi=%g step=%g first=%s\n", a, b, it % 2, t.n, t.lo,
                    t.hi, t.step, lb[0]);
    }
    CHECK_MSG(bad == 0, "%d ranges with bad ticks", bad);
}

static void test_value_labels(void)
{
    char b[64];
    pl_value_label(0.95234, b, sizeof b);
    CHECK_MSG(strcmp(b, "0.952") == 0, "%s", b);
    pl_value_label(12.345, b, sizeof b);
    CHECK_MSG(strcmp(b, "12.3") == 0, "%s", b);
    pl_value_label(1234.5, b, sizeof b);
    CHECK_MSG(strcmp(b, "1234") == 0 || strcmp(b, "1235") == 0, "%s", b);
    pl_value_label(NAN, b, sizeof b);
    CHECK(strcmp(b, "n/a") == 0);
    pl_value_label(-0.0001, b, sizeof b);
    CHECK_MSG(strchr(b, 'e') != NULL, "%s", b);
}

/* ---- font ---- */

static void test_font(void)
{
    int inked = 0;
    for (unsigned c = 33; c < 127; c++) {
        int any = 0;
        for (int r = 0; r < PL_GLYPH_H; r++)
            for (int k = 0; k < PL_GLYPH_W; k++)
                any |= pl_glyph_bit(c, r, k);
        inked += any;
        int left, adv;
        pl_glyph_metrics(c, &left, &adv);
        CHECK_MSG(adv >= 2 && adv <= PL_GLYPH_W + 1 && left >= 0, "glyph %c", c);
    }
    CHECK_MSG(inked == 94, "%d of 94 glyphs have ink", inked);
    /* Descenders go below the baseline; capitals do not. */
    CHECK(pl_glyph_bit('g', PL_GLYPH_BASE, 4) && !pl_glyph_bit('E', PL_GLYPH_BASE, 0));
    /* Outside ASCII draws as '?'. */
    const char *s = "\xc3\xa9";
    CHECK(pl_utf8_next(&s) == 0xe9 && *s == 0);
    CHECK(pl_text_width_raster("\xc3\xa9", 10, 0) == pl_text_width_raster("?", 10, 0));
    CHECK(pl_text_width_raster("ab", 20, 0) == 2 * pl_text_width_raster("ab", 10, 0));
    char b[64];
    pl_shorten("a_rather_long_class_name", 10, 60, b, sizeof b);
    CHECK_MSG(pl_text_width(b, 10, 0) <= 60 && strstr(b, "...") && strncmp(b, "a_r", 3) == 0, "%s", b);
    pl_shorten("cat", 10, 60, b, sizeof b);
    CHECK(strcmp(b, "cat") == 0);
    /* A multi-byte character is never cut in half. */
    pl_shorten("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 10, 30, b, sizeof b);
    CHECK_MSG(strncmp(b, "\xc3\xa9", 2) == 0 && strstr(b, "...") && (strstr(b, "...") - b) % 2 == 0, "%s", b);
}

/* ---- figures ---- */

static tl_figure *demo_figure(int w, int h, int all_nan)
{
    tl_err e = {0};
    tl_figure *f = tl_figure_new(w, h, 2, 2, "Demo & <test>", &e);
    if (!f)
        return NULL;
    double x[20], y1[20], y2[20];
    for (int i = 0; i < 20; i++) {
        x[i] = i;
        y1[i] = all_nan ? NAN : 1 - exp(-i / 5.0);
        y2[i] = all_nan ? NAN : 0.8 - 0.6 * exp(-i / 4.0);
    }
    tl_series s[3] = { { "train <A&B>", 20, x, y1, -1, 1, 0 }, { "val \"q\" 'x'", 20, x, y2, -1, 0, 1 },
                       { NULL, 0, NULL, NULL, -1, 0, 0 } };
    tl_line_panel p;
    tl_line_panel_init(&p);
    p.title = "curves";
    p.xlabel = "epoch";
    p.ylabel = "accuracy";
    p.series = s;
    p.nseries = 3;
    p.hline = 0.9;
    p.hline_label = "target";
    int rc = tl_figure_lines(f, 0, &p, &e);
    int64_t m[9] = { 10, 1, 0, 2, 8, 1, 0, 0, 0 }; /* the last row is empty */
    const char *names[3] = { "cat", "dog & co", NULL };
    rc |= tl_figure_heatmap(f, 1, "confusion", 3, m, names, &e);
    double conf[5] = { 0.1, 0.3, 0.5, 0.7, NAN }, acc[5] = { NAN, 0.2, 0.45, 0.72, 0.9 };
    int64_t cnt[5] = { 0, 3, 10, 20, 40 };
    rc |= tl_figure_reliability(f, 2, "calibration", 5, conf, acc, cnt, 0.05, &e);
    const char *bl[3] = { "a", "b", "c" };
    double bv[3] = { 0.5, NAN, all_nan ? NAN : 0.9 };
    rc |= tl_figure_bars(f, 3, "bars", "score", 3, bl, bv, NAN, NAN, &e);
    if (rc) {
        fprintf(stderr, "    demo figure: %s\n", e.msg);
        tl_figure_free(f);
        return NULL;
    }
    return f;
}

/* Tags balance (ignoring <?xml?> and self-closing ones) and every '&'
 * starts an entity. */
static int well_formed(const char *s, char *why, size_t cap)
{
    char stack[64][32];
    int depth = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '&') {
            if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) && strncmp(p, "&quot;", 6) &&
                strncmp(p, "&apos;", 6)) {
                snprintf(why, cap, "bare & at %d", (int)(p - s));
                return 0;
            }
            continue;
        }
        if (*p == '>') {
            snprintf(why, cap, "bare > at %d", (int)(p - s));
            return 0;
        }
        if (*p != '<')
            continue;
        const char *end = strchr(p, '>');
        if (!end) {
            snprintf(why, cap, "unterminated tag");
            return 0;
        }
        /* Quoted attribute values must not hold < or >. */
        for (const char *q = p + 1; q < end; q++)
            if (*q == '<') {
                snprintf(why, cap, "< inside a tag at %d", (int)(q - s));
                return 0;
            }
        if (p[1] == '?') {
            p = end;
            continue;
        }
        int closing = p[1] == '/', selfc = end[-1] == '/';
        const char *name = p + 1 + closing;
        size_t n = strcspn(name, " />");
        if (n == 0 || n >= 32) {
            snprintf(why, cap, "bad tag name at %d", (int)(p - s));
            return 0;
        }
        if (closing) {
            if (depth == 0 || strncmp(stack[depth - 1], name, n) || stack[depth - 1][n]) {
                snprintf(why, cap, "unbalanced </%.*s>", (int)n, name);
                return 0;
            }
            depth--;
        } else if (!selfc) {
            if (depth == 64)
                return 0;
            memcpy(stack[depth], name, n);
            stack[depth++][n] = 0;
        }
        p = end;
    }
    if (depth) {
        snprintf(why, cap, "%d unclosed tags, innermost <%s>", depth, stack[depth - 1]);
        return 0;
    }
    return 1;
}

static void test_svg(void)
{
    tl_err e = {0};
    tl_figure *f = demo_figure(800, 600, 0);
    CHECK(f != NULL);
    if (!f)
        return;
    const char *path = tmp("fig.SVG");
    CHECK_MSG(tl_figure_write(f, path, &e) == 0, "%s", e.msg);
    char *s = slurp(path);
    CHECK(s != NULL);
    if (s) {
        char why[128] = "";
        CHECK_MSG(well_formed(s, why, sizeof why), "%s", why);
        CHECK(strstr(s, "viewBox=\"0 0 800 600\"") && strstr(s, "font-family=\"sans-serif\""));
        CHECK(strstr(s, "fill=\"#ffffff\""));
        CHECK(strstr(s, ">train &lt;A&amp;B&gt;</text>"));
        CHECK(strstr(s, ">val &quot;q&quot; &apos;x&apos;</text>"));
        CHECK(strstr(s, ">Demo &amp; &lt;test&gt;</text>"));
        CHECK(strstr(s, ">dog &amp; co</text>") && strstr(s, ">predicted</text>") && strstr(s, ">true</text>"));
        CHECK(strstr(s, "ECE = 0.050") && strstr(s, "stroke-dasharray"));
        CHECK(strstr(s, "rotate(-90 ") && strstr(s, ">n/a</text>"));
        CHECK(!strstr(s, "nan") && !strstr(s, "inf"));
        /* Python's XML parser agrees, when it is there. */
        if (access("/usr/bin/python3", X_OK) == 0) {
            char cmd[700];
            snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' %s",
                     path);
            CHECK_MSG(system(cmd) == 0, "python could not parse %s", path);
        }
        free(s);
    }
    /* Odd bytes in names still make valid XML. */
    tl_figure *g = tl_figure_new(300, 300, 1, 1, "bad \x01 \xff bytes \xc3\xa9", &e);
    int64_t m[1] = { 3 };
    const char *nm[1] = { "x\x7f<" };
    CHECK(g && tl_figure_heatmap(g, 0, NULL, 1, m, nm, &e) == 0);
    CHECK(g && tl_figure_write(g, tmp("odd.svg"), &e) == 0);
    s = slurp(tmp("odd.svg"));
    if (s) {
        char why[128] = "";
        CHECK_MSG(well_formed(s, why, sizeof why), "%s", why);
        CHECK(strstr(s, "bad ? ? bytes \xc3\xa9") && strstr(s, "x?&lt;"));
        free(s);
    }
    tl_figure_free(g);
    tl_figure_free(f);
}

static int near_colour(const tl_image *im, int x, int y, uint32_t c, int tol)
{
    const uint8_t *p = im->px + ((size_t)y * im->w + x) * 3;
    return abs(p[0] - (int)(c >> 16 & 255)) <= tol && abs(p[1] - (int)(c >> 8 & 255)) <= tol &&
           abs(p[2] - (int)(c & 255)) <= tol;
}

static void test_png(void)
{
    tl_err e = {0};
    tl_image im = { 0 };
    /* One bar over the whole fixed range: the middle of the figure is bar. */
    tl_figure *f = tl_figure_new(320, 240, 1, 1, NULL, &e);
    const char *lab[1] = { "only" };
    double v[1] = { 1.0 };
    CHECK(f && tl_figure_bars(f, 0, NULL, NULL, 1, lab, v, 0, 1, &e) == 0);
    CHECK_MSG(f && tl_figure_write(f, tmp("bar.png"), &e) == 0, "%s", e.msg);
    CHECK_MSG(tl_image_decode_file(tmp("bar.png"), &im, 0, &e) == 0, "%s", e.msg);
    CHECK(im.w == 320 && im.h == 240);
    if (im.w == 320 && im.h == 240) {
        CHECK(near_colour(&im, 160, 120, 0x0072b2, 0));
        CHECK(near_colour(&im, 0, 0, 0xffffff, 0) && near_colour(&im, 319, 239, 0xffffff, 0));
        /* Dark text (the value) above the bar, in the middle column. */
        int ink = 0;
        for (int y = 0; y < 40; y++)
            ink |= near_colour(&im, 160, y, PL_INK, 60) || near_colour(&im, 159, y, PL_INK, 60) ||
                   near_colour(&im, 161, y, PL_INK, 60);
        CHECK_MSG(ink, "no value text above the bar");
    }
    tl_figure_free(f);

    /* A flat series at the middle of fixed axes: a horizontal line of the
     * first palette colour crosses the middle column. */
    f = tl_figure_new(300, 200, 1, 1, NULL, &e);
    double x[2] = { 0, 1 }, y[2] = { 0.5, 0.5 };
    tl_series s = { NULL, 2, x, y, -1, 0, 0 };
    tl_line_panel p;
    tl_line_panel_init(&p);
    p.series = &s;
    p.nseries = 1;
    p.xmin = 0, p.xmax = 1, p.ymin = 0, p.ymax = 1;
    CHECK(f && tl_figure_lines(f, 0, &p, &e) == 0);
    CHECK(f && tl_figure_write(f, tmp("line.PNG"), &e) == 0);
    CHECK(tl_image_decode_file(tmp("line.PNG"), &im, 0, &e) == 0);
    int rows = 0, first = -1;
    for (int yy = 0; yy < im.h; yy++)
        if (near_colour(&im, im.w / 2, yy, pl_palette[0], 40)) {
            rows++;
            first = first < 0 ? yy : first;
        }
    CHECK_MSG(rows >= 1 && rows <= 3, "%d rows of line colour", rows);
    CHECK_MSG(abs(first - im.h / 2) < 30, "line at row %d of %d", first, im.h);
    tl_figure_free(f);

    /* The whole demo as PNG; sizes are clamped to at least 200. */
    f = demo_figure(100, 5000, 0);
    CHECK(f && tl_figure_write(f, tmp("demo.png"), &e) == 0);
    CHECK(tl_image_decode_file(tmp("demo.png"), &im, 0, &e) == 0 && im.w == 200 && im.h == 4000);
    tl_figure_free(f);
    tl_image_free(&im);
}

static void test_errors(void)
{
    tl_err e = {0};
    CHECK(tl_figure_new(640, 480, 0, 1, NULL, &e) == NULL && strstr(e.msg, "rows"));
    tl_figure *f = tl_figure_new(640, 480, 2, 2, NULL, &e);
    CHECK(f != NULL);
    if (!f)
        return;
    tl_line_panel p;
    tl_line_panel_init(&p);
    CHECK(isnan(p.xmin) && isnan(p.ymax) && isnan(p.hline) && p.nseries == 0);
    e.msg[0] = 0;
    CHECK(tl_figure_lines(f, 4, &p, &e) == -1 && strstr(e.msg, "panel 4"));
    CHECK(tl_figure_lines(f, -1, &p, &e) == -1);
    int64_t m[4] = { 1, 2, 3, 4 };
    CHECK(tl_figure_heatmap(f, 9, NULL, 2, m, NULL, &e) == -1);
    CHECK(tl_figure_heatmap(f, 0, NULL, 0, m, NULL, &e) == -1);
    m[1] = -2;
    CHECK(tl_figure_heatmap(f, 0, NULL, 2, m, NULL, &e) == -1 && strstr(e.msg, "negative"));
    double d[2] = { 1, 2 };
    CHECK(tl_figure_bars(f, 0, NULL, NULL, 0, NULL, d, NAN, NAN, &e) == -1);
    CHECK(tl_figure_reliability(f, 0, NULL, 0, d, d, NULL, NAN, &e) == -1);
    tl_series s = { "x", 3, NULL, NULL, -1, 0, 0 };
    p.series = &s;
    p.nseries = 1;
    CHECK(tl_figure_lines(f, 0, &p, &e) == -1 && strstr(e.msg, "series 0"));

    /* Empty panels, zero-point series and no series at all draw fine. */
    s.n = 0;
    CHECK(tl_figure_lines(f, 0, &p, &e) == 0);
    p.nseries = 0;
    p.series = NULL;
    CHECK(tl_figure_lines(f, 1, &p, &e) == 0);
    CHECK(tl_figure_write(f, tmp("empty.svg"), &e) == 0);
    CHECK(tl_figure_write(f, tmp("empty.png"), &e) == 0);

    e.msg[0] = 0;
    CHECK(tl_figure_write(f, tmp("x.jpg"), &e) == -1 && strstr(e.msg, ".svg or .png"));
    CHECK(access(tmp("x.jpg"), F_OK) != 0);
    CHECK(tl_figure_write(f, tmp("svg"), &e) == -1);
    CHECK(tl_figure_write(f, tmp("no/such/dir/x.png"), &e) == -1 && e.msg[0]);
    CHECK(tl_figure_write(f, "", &e) == -1);
    CHECK(tl_figure_write(NULL, tmp("y.svg"), &e) == -1);
    tl_figure_free(f);
    tl_figure_free(NULL);

    /* All-NaN data everywhere: no crash, no division by zero, both formats. */
    f = demo_figure(640, 480, 1);
    CHECK(f != NULL);
    double nan3[3] = { NAN, NAN, NAN };
    int64_t zero3[3] = { 0, 0, 0 }, zero9[9] = { 0 };
    CHECK(f && tl_figure_reliability(f, 2, NULL, 3, nan3, nan3, zero3, NAN, &e) == 0);
    CHECK(f && tl_figure_heatmap(f, 1, NULL, 3, zero9, NULL, &e) == 0);
    CHECK(f && tl_figure_bars(f, 3, NULL, NULL, 3, NULL, nan3, NAN, NAN, &e) == 0);
    CHECK_MSG(f && tl_figure_write(f, tmp("nan.svg"), &e) == 0, "%s", e.msg);
    CHECK_MSG(f && tl_figure_write(f, tmp("nan.png"), &e) == 0, "%s", e.msg);
    char *sv = slurp(tmp("nan.svg"));
    CHECK(sv && strstr(sv, ">no data</text>") && !strstr(sv, "nan") && !strstr(sv, "inf"));
    free(sv);
    /* Replacing a panel frees the old one (checked under ASan). */
    CHECK(f && tl_figure_heatmap(f, 0, "again", 3, zero9, NULL, &e) == 0);
    tl_figure_free(f);

    /* Many classes: every cell drawn, labels thinned, still quick. */
    int k = 300;
    int64_t *big = calloc((size_t)k * k, sizeof *big);
    for (int i = 0; big && i < k; i++)
        big[(size_t)i * k + i] = 5, big[(size_t)i * k + (i + 1) % k] = 1;
    f = tl_figure_new(800, 800, 1, 1, NULL, &e);
    CHECK(f && big && tl_figure_heatmap(f, 0, "300 classes", k, big, NULL, &e) == 0);
    CHECK(f && tl_figure_write(f, tmp("big.png"), &e) == 0);
    CHECK(f && tl_figure_write(f, tmp("big.svg"), &e) == 0);
    char *bs = slurp(tmp("big.svg"));
    int labels = 0;
    for (const char *q = bs; q && (q = strstr(q, "text-anchor=\"end\"")); q++)
        labels++;
    CHECK_MSG(labels > 10 && labels < 200, "%d end-anchored labels", labels);
    free(bs);
    free(big);
    tl_figure_free(f);

    /* "-" writes SVG to standard output. */
    f = tl_figure_new(200, 200, 1, 1, NULL, &e);
    fflush(stdout);
    int saved = dup(1);
    FILE *o = freopen(tmp("stdout.svg"), "w", stdout);
    CHECK(o != NULL);
    CHECK(tl_figure_write(f, "-", &e) == 0);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    char *so = slurp(tmp("stdout.svg"));
    CHECK(so && strncmp(so, "<?xml", 5) == 0 && strstr(so, "</svg>"));
    free(so);
    tl_figure_free(f);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tl-test-plot-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_ticks_cases();
    test_ticks_random();
    test_value_labels();
    test_font();
    test_svg();
    test_png();
    test_errors();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_finish("plot");
}
