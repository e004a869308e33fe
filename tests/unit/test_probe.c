/* The layer sweep's pieces that need no images: which layers "all"
 * means for each family, the paired noise of two layers' accuracies
 * against a hand computation, and the verdict's sentences for the three
 * cases (the default layer best; another layer beyond noise; within
 * noise). tests/bats/probe.bats runs the whole tool on real photos. */
#include "check.h"
#include "models/models.h"
#include "report/probe_report.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>

static int has(const tl_model *m, const int *nodes, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(m->nodes[nodes[i]].name, name))
            return 1;
    return 0;
}

static void test_all_layers(void)
{
    static const struct {
        const char *arch;
        int input;
        const char *first, *last, *absent;
    } cases[] = {
        {"mobilenet_v2", 64, "features.0", "avgpool", "features.18"}, /* features.18 pooled is avgpool */
        {"resnet18", 64, "maxpool", "avgpool", "fc"},
        {"vit_ti_16", 32, "conv_proj", "cls_token", "heads.head"},
        {"vgg11", 32, "features.1", "classifier.4", "classifier.6"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        tl_err e = {0};
        tl_arch_opts o;
        tl_arch_opts_default(&o);
        o.input_w = o.input_h = cases[c].input;
        o.num_classes = 5;
        tl_model *m = tl_arch_build(cases[c].arch, &o, &e);
        CHECK_MSG(m, "%s", e.msg);
        if (!m)
            continue;
        int n = tl_probe_all_layers(m, NULL, 0);
        int *nodes = calloc((size_t)n + 1, sizeof *nodes);
        CHECK(tl_probe_all_layers(m, nodes, n) == n && n >= 3);
        int ordered = 1;
        for (int i = 1; i < n; i++)
            ordered &= nodes[i] > nodes[i - 1];
        CHECK_MSG(ordered, "%s: layers in execution order", cases[c].arch);
        CHECK_MSG(!strcmp(m->nodes[nodes[0]].name, cases[c].first), "%s starts at %s", cases[c].arch,
                  m->nodes[nodes[0]].name);
        CHECK_MSG(nodes[n - 1] == m->features_node && !strcmp(m->nodes[nodes[n - 1]].name, cases[c].last),
                  "%s ends at the default features", cases[c].arch);
        CHECK_MSG(!has(m, nodes, n, cases[c].absent), "%s leaves out %s", cases[c].arch, cases[c].absent);
        printf("  %s: %d layers, %s .. %s\n", cases[c].arch, n, cases[c].first, cases[c].last);
        free(nodes);
        tl_model_free(m);
    }
}

/* A hand-made sweep: layer accuracies from per-image right/wrong flags. */
static void make(tl_probe *p, int nlayers, int64_t nval, const int *right_counts, const int *overlap)
{
    memset(p, 0, sizeof *p);
    p->layers = calloc((size_t)nlayers, sizeof *p->layers);
    p->nlayers = nlayers;
    p->nval = nval;
    p->ntrain = 100;
    p->nclasses = 3;
    p->best = p->default_layer = -1;
    for (int i = 0; i < nlayers; i++) {
        tl_probe_layer *L = &p->layers[i];
        snprintf(L->name, sizeof L->name, "stage%d", i + 1);
        L->depth = i + 1;
        L->dim = 8 << i;
        L->right = calloc((size_t)nval, 1);
        /* the first overlap[i] images right, then the rest of right_counts[i] from the end */
        for (int64_t k = 0; k < overlap[i]; k++)
            L->right[k] = 1;
        for (int64_t k = 0; k < right_counts[i] - overlap[i]; k++)
            L->right[nval - 1 - k] = 1;
        L->correct = right_counts[i];
        L->val_acc = (double)right_counts[i] / (double)nval;
        L->train_acc = 1;
        L->val_loss = 1.0 - L->val_acc;
        if (p->best < 0 || L->val_acc >= p->layers[p->best].val_acc)
            p->best = i;
    }
    p->default_layer = nlayers - 1;
}

static void free_made(tl_probe *p)
{
    for (int i = 0; i < p->nlayers; i++)
        free(p->layers[i].right);
    free(p->layers);
}

static int any_line(char **v, int n, const char *needle)
{
    for (int i = 0; i < n; i++)
        if (strstr(v[i], needle))
            return 1;
    return 0;
}

static void test_noise_and_verdict(void)
{
    tl_err e = {0};
    tl_probe p;
    /* 200 images; layer 2 right on 180 (first 150 + last 30), layer 3 on 160 (first 160) */
    int counts[3] = {100, 180, 160}, overlap[3] = {100, 150, 160};
    make(&p, 3, 200, counts, overlap);
    /* discordant pairs between 2 and 3: 2 right and 3 wrong = 30 (the last 30);
     * 3 right and 2 wrong = 10 (images 150..159); var = (40 - 20^2/200) / 200^2 */
    double want = 2 * sqrt((40.0 - 400.0 / 200.0) / (200.0 * 200.0));
    CHECK_NEAR(tl_probe_noise(&p, 1, 2), want, 1e-12);
    CHECK_NEAR(tl_probe_noise(&p, 2, 1), want, 1e-12);
    CHECK(tl_probe_noise(&p, 1, 1) == 0);
    char **v;
    int n;
    CHECK(tl_probe_verdict(&p, &v, &n, &e) == 0);
    for (int i = 0; i < n; i++)
        printf("  | %s\n", v[i]);
    /* +10 points against a noise of 6.2: beyond */
    CHECK(n >= 3 && any_line(v, n, "stage2 is best, 10.0 points above the default layer (stage3, 0.800)") &&
          any_line(v, n, "beyond noise (+-6.2 points, paired, 200 validation images)") &&
          any_line(v, n, "--layer stage2") && any_line(v, n, "then falls to 0.800 at the last layer (stage3)"));
    tl_strings_free(v, n);

    /* the default within noise of the best: keep it */
    p.layers[2].val_acc = 0.87;
    CHECK(tl_probe_verdict(&p, &v, &n, &e) == 0);
    CHECK(any_line(v, n, "within noise") && any_line(v, n, "keep the default layer"));
    tl_strings_free(v, n);

    /* the default best */
    p.best = 2;
    p.layers[2].val_acc = 0.95;
    CHECK(tl_probe_verdict(&p, &v, &n, &e) == 0);
    CHECK(any_line(v, n, "stage3 is the default layer and the best") &&
          any_line(v, n, "to 0.950 at the last layer (stage3)"));
    tl_strings_free(v, n);

    /* the best in the middle, the last layer within noise of it: it holds */
    p.best = 1;
    p.layers[2].val_acc = 0.88;
    CHECK(tl_probe_verdict(&p, &v, &n, &e) == 0);
    CHECK(any_line(v, n, "at stage2 and holds to the last layer (stage3, 0.880)"));
    CHECK(!any_line(v, n, "already within noise of the best"));
    tl_strings_free(v, n);

    /* an early layer as good as the best (stage1 right on 178 of stage2's 180) */
    p.layers[0].val_acc = 0.89;
    memcpy(p.layers[0].right, p.layers[1].right, 200);
    p.layers[0].right[0] = p.layers[0].right[1] = 0;
    CHECK(tl_probe_verdict(&p, &v, &n, &e) == 0);
    CHECK(any_line(v, n, "stage1 (layer 1 of 3, 8 values) is already within noise of the best (0.890 vs 0.900)"));
    tl_strings_free(v, n);

    /* without the default among the layers, the deepest probed is the reference */
    p.best = 1;
    p.layers[2].val_acc = 0.80;
    p.default_layer = -1;
    CHECK(tl_probe_verdict(&p, &v, &n, &e) == 0);
    CHECK(any_line(v, n, "above the deepest layer probed (stage3"));
    tl_strings_free(v, n);

    /* JSON: parses, names best and reference */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tl_probe_about about = {"m.safetensors", "train/", "split", "logreg", 1.0};
    char *lines[1] = {"a \"quoted\" line"};
    tl_probe_json(f, &p, &about, lines, 1);
    fclose(f);
    tl_json j;
    CHECK(tl_json_parse(buf, len, &j, &e) == 0);
    const tl_json *best = tl_json_get(&j, "best"), *ref = tl_json_get(&j, "reference"), *ls = tl_json_get(&j, "layers");
    CHECK(best && best->type == TL_JSON_STRING && !strcmp(best->string, "stage2"));
    CHECK(ref && ref->type == TL_JSON_STRING && !strcmp(ref->string, "stage3"));
    CHECK(ls && ls->type == TL_JSON_ARRAY && ls->count == 3);
    tl_json_free(&j);
    free(buf);
    free_made(&p);
}

int main(void)
{
    test_all_layers();
    test_noise_and_verdict();
    return check_finish("probe");
}
