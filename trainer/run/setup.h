// setup.h: the experiment (config + prepared data) turned into what nn/ takes: the model's
// shape, the loss and optimizer settings. nn/ knows no Config; this is where it meets one.
#pragma once
#include <stddef.h>

#include "config.h"
#include "model.h"
#include "optim.h"
#include "shards.h"

// The model an experiment trains on this data; activations sized for max_lanes lanes.
ModelShape model_shape_from(const Config *cfg, const DataMeta *meta, int max_lanes);
// 0 if a checkpoint's model (have) has the tensors of the experiment's (want); else -1 with
// what differs in err.
int model_shape_check(const ModelShape *have, const ModelShape *want, char *err, size_t errlen);
LossConfig loss_config_from(const Config *cfg, const DataMeta *meta);
OptimConfig optim_config_from(const Config *cfg);
