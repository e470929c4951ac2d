// signals.h: SIGTERM and SIGUSR1 (Slurm's --signal) ask the run to stop at the next step.
//
// The handler only sets a flag; the training loop reduces it with MAX across ranks, so a
// signal that reaches one rank stops all of them at the same step, after rank 0 has
// written a checkpoint. The program then exits with EXIT_PREEMPTED (75).
#pragma once

void signals_install(void);
int signals_stop_requested(void); // 0, or the number of the signal received
