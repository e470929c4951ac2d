// train.h: `trainer train` and what the scoring commands share with it.
#pragma once
#include "config.h"
#include "model.h"
#include "shards.h"

int cmd_train(int argc, char **argv);
LossConfig loss_config_from(const Config *cfg, const DataMeta *meta);
ModelShape model_shape_from(const Config *cfg, const DataMeta *meta, int max_lanes);
// 0 if a checkpoint's model (have) has the tensors of the experiment's (want); else -1 with
// what differs in err.
int model_shape_check(const ModelShape *have, const ModelShape *want, char *err, size_t errlen);
