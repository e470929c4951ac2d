// signals.h: SIGTERM, SIGUSR1 (Slurm's --signal) and SIGINT (Ctrl-C; a second one kills) ask
// the run to stop at the next step.
//
// The handler only sets a flag; the training loop reduces it with MAX across ranks, so a
// signal that reaches one rank stops all of them at the same step, after rank 0 has
// written a checkpoint. The program then exits with EXIT_PREEMPTED (75).
#pragma once

// launcher_output: stdout and stderr are a launcher's (mpirun's pty and pipe), which it stops
// reading when it is itself signalled: after a stop request writes to them no longer block,
// so the rank reaches its checkpoint before the launcher kills it. (Never for a user's own
// terminal: its flags are shared with the shell.)
void signals_install(int launcher_output);
int signals_stop_requested(void); // 0, or the number of the signal received
