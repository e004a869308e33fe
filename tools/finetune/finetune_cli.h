/* tl-finetune's two jobs behind its option table (tools/tl-finetune.c):
 * a classifier on feature vectors (head.c) and the network on images
 * (network.c). Each says what happens, writes the log and exits on error. */
#ifndef TL_TOOLS_FINETUNE_CLI_H
#define TL_TOOLS_FINETUNE_CLI_H

#include "../common.h"
#include "train/head_fit.h"
#include "train/finetune.h"
#include "train/pseudo.h"

/* What a head on feature vectors needs beyond tl_linear_opts. */
typedef struct ft_feature_run {
    const char *train, *val, *out, *run_name, *class_weights;
    int multilabel;           /* --multi-label given: the features must be multi-label */
    double l2;
    int metric, neighbours;   /* --head knn|ncm */
    const char *unlabelled;   /* --unlabelled: self-training on these features */
    tl_pseudo_opts pseudo;
    int force;                /* --force: --val or --unlabelled features of another origin */
} ft_feature_run;

/* A linear (or knn/ncm) head on TRAIN's vectors, written to OUT. */
int ft_head_main(tl_cli *cli, const ft_feature_run *fr, const tl_linear_opts *lin);

/* The network on images: fine-tuning or scratch, alone or as one of
 * several processes (mpirun, srun); with find_lr, the range test instead. */
int ft_network_main(tl_cli *cli, tl_finetune_opts *fo, const char *run_name, double mpi_timeout, const char *find_lr,
                    int find_lr_steps);

#endif
