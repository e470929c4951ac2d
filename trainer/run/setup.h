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

// The data-shaping keys (data/fingerprint.h) whose values differ between the experiment a
// checkpoint was trained with (its stored config text) and cfg: "KEY (THERE -> HERE)",
// ", "-separated; data.on_error is left out (it changes the data only when rows are bad).
// "" when none differ or the text does not load.
void checkpoint_data_diff(const char *ckpt_config_text, const Config *cfg, char *out, size_t cap);
