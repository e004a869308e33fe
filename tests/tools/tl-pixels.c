/* Test driver (not installed): the input tl feeds a network, for running
 * the same images through other runtimes. For each image, in order:
 * the preprocessed float32 tensor (3 x S x S, as tl-extract computes it)
 * appended to OUT.f32, and the resized and cropped uint8 pixels
 * (S x S x 3, what an ONNX graph with in-graph preprocessing takes)
 * appended to OUT.u8.
 *
 * usage: tl-pixels MODEL OUT IMAGE... */
#include "io/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *msg)
{
    fprintf(stderr, "tl-pixels: %s\n", msg);
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: tl-pixels MODEL OUT IMAGE...\n");
        return 2;
    }
    tl_err e = {0};
    /* The preprocessing alone: the metadata, not the weights. */
    char path[4096];
    tl_st_file f;
    tl_preproc pp;
    if (tl_model_locate(argv[1], path, sizeof path, &e) || tl_st_open(path, &f, &e) ||
        tl_preproc_from_meta(&f, &pp, &e))
        die(e.msg);
    tl_st_close(&f);
    char name[4096];
    snprintf(name, sizeof name, "%s.f32", argv[2]);
    FILE *ff = fopen(name, "wb");
    snprintf(name, sizeof name, "%s.u8", argv[2]);
    FILE *fu = fopen(name, "wb");
    if (!ff || !fu)
        die("cannot create the outputs");
    size_t S2 = (size_t)pp.input_w * pp.input_h;
    float *x = malloc(3 * S2 * sizeof *x);
    uint8_t *px = malloc(3 * S2);
    tl_image img = {0};
    tl_preproc_ws ws = {0};
    if (!x || !px)
        die("out of memory");
    for (int i = 3; i < argc; i++) {
        if (tl_image_decode_file(argv[i], &img, 0, &e) || tl_preprocess(&img, &pp, x, &ws, &e) ||
            tl_preprocess_crop(&img, &pp, px, &ws, &e))
            die(e.msg);
        if (fwrite(x, sizeof *x, 3 * S2, ff) != 3 * S2 || fwrite(px, 1, 3 * S2, fu) != 3 * S2)
            die("write failed");
    }
    if (fclose(ff) || fclose(fu))
        die("write failed");
    free(x);
    free(px);
    tl_image_free(&img);
    tl_preproc_ws_free(&ws);
    return 0;
}
