/* The display list: every drawing call of the panels lands here, and the
 * SVG writer and the rasteriser read it back. Pushes never fail loudly;
 * an allocation failure sets l->oom, checked once when the list is done. */
#include "plot_internal.h"

#include <stdlib.h>
#include <string.h>

void pl_list_init(pl_list *l, int w, int h)
{
    memset(l, 0, sizeof *l);
    l->w = w;
    l->h = h;
    l->clip = -1;
}

void pl_list_free(pl_list *l)
{
    free(l->ops);
    free(l->pts);
    free(l->chars);
    free(l->clips);
    memset(l, 0, sizeof *l);
}

/* Grows *p to hold at least need items of size bytes; 0 or -1. */
static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static pl_op *push(pl_list *l, int kind)
{
    size_t cap = (size_t)l->ops_cap;
    if (l->oom || grow((void **)&l->ops, &cap, (size_t)l->nops + 1, sizeof *l->ops)) {
        l->oom = 1;
        return NULL;
    }
    l->ops_cap = (int)cap;
    pl_op *o = &l->ops[l->nops++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->clip = l->clip;
    o->opacity = 1;
    return o;
}

int pl_clip_push(pl_list *l, float x0, float y0, float x1, float y1)
{
    size_t cap = (size_t)l->clips_cap;
    if (l->oom || grow((void **)&l->clips, &cap, (size_t)l->nclips + 1, sizeof *l->clips)) {
        l->oom = 1;
        return -1;
    }
    l->clips_cap = (int)cap;
    float *c = l->clips[l->nclips];
    c[0] = x0;
    c[1] = y0;
    c[2] = x1;
    c[3] = y1;
    l->clip = l->nclips++;
    return l->clip;
}

void pl_clip_none(pl_list *l)
{
    l->clip = -1;
}

void pl_path(pl_list *l, const float *xy, int n, int closed, pl_stroke s)
{
    if (n < 2 || s.width <= 0)
        return;
    if (l->oom || grow((void **)&l->pts, &l->pts_cap, l->npts + 2 * (size_t)n, sizeof *l->pts)) {
        l->oom = 1;
        return;
    }
    pl_op *o = push(l, PL_PATH);
    if (!o)
        return;
    o->stroke = s;
    o->colour = s.colour;
    o->closed = closed;
    o->pts = l->npts;
    o->npts = n;
    memcpy(l->pts + l->npts, xy, 2 * (size_t)n * sizeof *xy);
    l->npts += 2 * (size_t)n;
}

void pl_line(pl_list *l, float x0, float y0, float x1, float y1, pl_stroke s)
{
    float xy[4] = { x0, y0, x1, y1 };
    pl_path(l, xy, 2, 0, s);
}

void pl_rect(pl_list *l, float x, float y, float w, float h, uint32_t fill, float opacity)
{
    if (!(w > 0 && h > 0) || opacity <= 0)
        return;
    pl_op *o = push(l, PL_RECT);
    if (!o)
        return;
    o->x = x;
    o->y = y;
    o->w = w;
    o->h = h;
    o->colour = fill;
    o->opacity = opacity > 1 ? 1 : opacity;
}

void pl_rect_outline(pl_list *l, float x, float y, float w, float h, pl_stroke s)
{
    float xy[8] = { x, y, x + w, y, x + w, y + h, x, y + h };
    pl_path(l, xy, 4, 1, s);
}

void pl_circle(pl_list *l, float cx, float cy, float r, uint32_t fill)
{
    if (!(r > 0))
        return;
    pl_op *o = push(l, PL_CIRCLE);
    if (!o)
        return;
    o->x = cx;
    o->y = cy;
    o->w = r;
    o->colour = fill;
}

void pl_text(pl_list *l, float x, float y, const char *s, float size, int anchor, int rotate, int bold,
             uint32_t colour)
{
    if (!s || !*s)
        return;
    size_t n = strlen(s) + 1;
    if (l->oom || grow((void **)&l->chars, &l->chars_cap, l->nchars + n, 1)) {
        l->oom = 1;
        return;
    }
    pl_op *o = push(l, PL_TEXT);
    if (!o)
        return;
    memcpy(l->chars + l->nchars, s, n);
    o->text = l->nchars;
    l->nchars += n;
    o->x = x;
    o->y = y;
    o->size = size;
    o->anchor = anchor;
    o->rotate = rotate;
    o->bold = bold;
    o->colour = colour;
}
