// sweep.h: `trainer sweep plan|run|summary` (see sweep.c and sweep_config.h).
#pragma once

int cmd_sweep(int argc, char **argv);
