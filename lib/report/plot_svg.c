/* The SVG writer: one element per display-list op, in drawing order, over
 * a white background. Text is escaped for XML and cleaned to valid UTF-8
 * (control characters and broken sequences become '?'), so any class name
 * gives a well-formed file. */
#include "plot_internal.h"
#include "outfile.h"

#include <stdio.h>
#include <string.h>

/* A coordinate with at most two decimals and no trailing zeros. */
static void num(FILE *f, double v)
{
    char b[48];
    if (v != v)
        v = 0;
    snprintf(b, sizeof b, "%.2f", v);
    char *dot = strchr(b, '.');
    if (dot) {
        char *end = b + strlen(b) - 1;
        while (end > dot && *end == '0')
            *end-- = 0;
        if (end == dot)
            *end = 0;
    }
    if (strcmp(b, "-0") == 0)
        strcpy(b, "0");
    fputs(b, f);
}

static void colour(FILE *f, const char *attr, uint32_t c)
{
    fprintf(f, " %s=\"#%06x\"", attr, (unsigned)(c & 0xffffff));
}

static void text_escaped(FILE *f, const char *s)
{
    while (*s) {
        const char *start = s;
        unsigned c = pl_utf8_next(&s);
        if (c == '?' && *start != '?') {
            fputc('?', f); /* an invalid byte */
            continue;
        }
        switch (c) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            if (c < 0x20 || c == 0x7f || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
                fputc('?', f);
            else
                fwrite(start, 1, (size_t)(s - start), f);
        }
    }
}

static void clip_attr(FILE *f, int clip)
{
    if (clip >= 0)
        fprintf(f, " clip-path=\"url(#c%d)\"", clip);
}

static void op_path(FILE *f, const pl_list *l, const pl_op *o)
{
    const float *p = l->pts + o->pts;
    fputs("<path d=\"", f);
    for (int i = 0; i < o->npts; i++) {
        fputs(i ? " L" : "M", f);
        num(f, p[2 * i]);
        fputc(' ', f);
        num(f, p[2 * i + 1]);
    }
    if (o->closed)
        fputs(" Z", f);
    fputs("\" fill=\"none\"", f);
    colour(f, "stroke", o->stroke.colour);
    fputs(" stroke-width=\"", f);
    num(f, o->stroke.width);
    fputs("\" stroke-linejoin=\"round\"", f);
    if (o->stroke.dash_on > 0 && o->stroke.dash_off > 0) {
        fputs(" stroke-dasharray=\"", f);
        num(f, o->stroke.dash_on);
        fputc(' ', f);
        num(f, o->stroke.dash_off);
        fputc('"', f);
    }
    clip_attr(f, o->clip);
    fputs("/>\n", f);
}

static void op_rect(FILE *f, const pl_op *o)
{
    fputs("<rect x=\"", f);
    num(f, o->x);
    fputs("\" y=\"", f);
    num(f, o->y);
    fputs("\" width=\"", f);
    num(f, o->w);
    fputs("\" height=\"", f);
    num(f, o->h);
    fputc('"', f);
    colour(f, "fill", o->colour);
    if (o->opacity < 1) {
        fputs(" fill-opacity=\"", f);
        num(f, o->opacity);
        fputc('"', f);
    }
    clip_attr(f, o->clip);
    fputs("/>\n", f);
}

static void op_circle(FILE *f, const pl_op *o)
{
    fputs("<circle cx=\"", f);
    num(f, o->x);
    fputs("\" cy=\"", f);
    num(f, o->y);
    fputs("\" r=\"", f);
    num(f, o->w);
    fputc('"', f);
    colour(f, "fill", o->colour);
    clip_attr(f, o->clip);
    fputs("/>\n", f);
}

static void op_text(FILE *f, const pl_list *l, const pl_op *o)
{
    static const char *const anchors[] = { "start", "middle", "end" };
    fputs("<text x=\"", f);
    num(f, o->x);
    fputs("\" y=\"", f);
    num(f, o->y);
    fputs("\" font-size=\"", f);
    num(f, o->size);
    fputc('"', f);
    if (o->anchor != PL_START)
        fprintf(f, " text-anchor=\"%s\"", anchors[o->anchor == PL_END ? 2 : 1]);
    if (o->bold)
        fputs(" font-weight=\"bold\"", f);
    if (o->rotate) {
        fprintf(f, " transform=\"rotate(%d ", o->rotate);
        num(f, o->x);
        fputc(' ', f);
        num(f, o->y);
        fputs(")\"", f);
    }
    colour(f, "fill", o->colour);
    clip_attr(f, o->clip);
    fputc('>', f);
    text_escaped(f, l->chars + o->text);
    fputs("</text>\n", f);
}

static void write_list(FILE *f, const pl_list *l)
{
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\">\n", l->w, l->h, l->w, l->h);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", l->w, l->h);
    if (l->nclips > 0) {
        fputs("<defs>\n", f);
        for (int i = 0; i < l->nclips; i++) {
            const float *c = l->clips[i];
            fprintf(f, "<clipPath id=\"c%d\"><rect x=\"", i);
            num(f, c[0]);
            fputs("\" y=\"", f);
            num(f, c[1]);
            fputs("\" width=\"", f);
            num(f, c[2] - c[0]);
            fputs("\" height=\"", f);
            num(f, c[3] - c[1]);
            fputs("\"/></clipPath>\n", f);
        }
        fputs("</defs>\n", f);
    }
    for (int i = 0; i < l->nops; i++) {
        const pl_op *o = &l->ops[i];
        switch (o->kind) {
        case PL_PATH: op_path(f, l, o); break;
        case PL_RECT: op_rect(f, o); break;
        case PL_CIRCLE: op_circle(f, o); break;
        case PL_TEXT: op_text(f, l, o); break;
        }
    }
    fputs("</svg>\n", f);
}

int pl_write_svg(const pl_list *l, const char *path, tl_err *e)
{
    tl_outfile o;
    if (tl_outfile_open(&o, path, e) < 0)
        return -1;
    write_list(o.fp, l);
    if (tl_outfile_commit(&o, e) < 0) {
        tl_outfile_abort(&o);
        return -1;
    }
    return 0;
}
