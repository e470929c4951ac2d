// predict.h: `trainer eval` and `trainer predict` (scoring with a trained checkpoint).
#pragma once

int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
