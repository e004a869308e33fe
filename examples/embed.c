/* embed: an image's feature vector on standard output, one value a line.
 *
 *   cc embed.c $(pkg-config --cflags --libs tl) -o embed
 *   ./embed mobilenet_v2.safetensors photo.jpg > photo.vec
 *   ./embed -l features.13 mobilenet_v2 photo.jpg     (another layer)
 *   cat photo.jpg | ./embed mobilenet_v2 -             (an image on stdin)
 *
 * The vector is the model's default features (the pooled penultimate
 * layer), or the layer given with -l, averaged over space. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tl.h>

/* The whole of a stream in memory: embed decodes from a buffer, as a
 * service receiving images over the network would. */
static unsigned char *slurp(FILE *f, size_t *n)
{
    size_t cap = 1 << 16;
    unsigned char *b = malloc(cap);
    *n = 0;
    while (b) {
        *n += fread(b + *n, 1, cap - *n, f);
        if (*n < cap)
            return ferror(f) ? (free(b), NULL) : b;
        unsigned char *nb = realloc(b, cap *= 2);
        if (!nb)
            free(b);
        b = nb;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *layer = NULL;
    if (argc == 5 && !strcmp(argv[1], "-l")) {
        layer = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: %s [-l LAYER] MODEL IMAGE|-\n", argv[0]);
        return 2;
    }
    tl_err err = {0};
    tl_session *s = tl_session_open(argv[1], 1, &err);
    if (!s || (layer && tl_session_set_layer(s, layer, 1, &err))) {
        fprintf(stderr, "embed: %s\n", err.msg);
        tl_session_free(s);
        return err.kind == TL_ERR_ARG ? 2 : 1;
    }
    int dim = tl_session_feature_dim(s), rc = 0;
    float *v = malloc((size_t)dim * sizeof *v);
    size_t n = 0;
    unsigned char *img = strcmp(argv[2], "-") ? NULL : slurp(stdin, &n);
    if (!v || (!strcmp(argv[2], "-") && !img))
        snprintf(err.msg, sizeof err.msg, "out of memory or unreadable input"), rc = 1;
    else if (img ? tl_session_extract_memory(s, img, n, v, &err) : tl_session_extract_file(s, argv[2], v, &err))
        rc = 1;
    for (int i = 0; !rc && i < dim; i++)
        printf("%.9g\n", v[i]);
    if (rc)
        fprintf(stderr, "embed: %s\n", err.msg);
    if (!rc && fflush(stdout))
        rc = 1;
    free(img);
    free(v);
    tl_session_free(s);
    return rc;
}
