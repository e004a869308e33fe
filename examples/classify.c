/* classify: the five most likely classes of an image.
 *
 *   cc classify.c $(pkg-config --cflags --libs tl) -o classify
 *   ./classify mobilenet_v2.safetensors photo.jpg
 *
 * MODEL is a network checkpoint or a head trained on features (tl-finetune),
 * a path or a name in $TL_MODEL_PATH. */
#include <stdio.h>
#include <stdlib.h>
#include <tl.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL IMAGE\n", argv[0]);
        return 2;
    }
    tl_err err = {0};
    tl_session *s = tl_session_open(argv[1], 0, &err);
    if (!s) {
        fprintf(stderr, "%s: %s\n", argv[0], err.msg);
        return 1;
    }
    int k = tl_session_num_classes(s);
    float *scores = malloc((size_t)(k > 0 ? k : 1) * sizeof *scores);
    if (!scores || tl_session_predict_file(s, argv[2], scores, &err)) {
        fprintf(stderr, "%s: %s\n", argv[0], scores ? err.msg : "out of memory");
        tl_session_free(s);
        free(scores);
        return 1;
    }
    int top[5], n = k < 5 ? k : 5;
    tl_top_k(scores, k, n, top);
    for (int i = 0; i < n; i++) {
        const char *name = tl_session_class_name(s, top[i]);
        if (name)
            printf("%.4f\t%s\n", scores[top[i]], name);
        else
            printf("%.4f\t%d\n", scores[top[i]], top[i]);
    }
    free(scores);
    tl_session_free(s);
    return 0;
}
