// signals.c: see signals.h.
#include "signals.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

static volatile sig_atomic_t g_stop = 0;
static int g_pipe_fd[2] = {-1, -1}; // stdout, stderr when they are the launcher's pipes

// mpirun, sent SIGTERM itself, stops reading the ranks' output pipes at once, sends them
// SIGTERM a second later and SIGKILL a second after that. A rank blocked writing a log line
// to the full pipe would never reach the next step: after a stop request writes to a pipe
// no longer block (the interrupted write restarts and fails with EAGAIN), so the rank stops,
// checkpoints and exits 75 in time. fcntl is async-signal-safe.
static void on_signal(int sig) {
    g_stop = sig;
    for (int i = 0; i < 2; i++)
        if (g_pipe_fd[i] >= 0)
            fcntl(g_pipe_fd[i], F_SETFL, O_NONBLOCK | fcntl(g_pipe_fd[i], F_GETFL));
}

void signals_install(int launcher_output) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int fd = 1; fd <= 2 && launcher_output; fd++) {
        struct stat st; // mpirun gives a rank a pty of its own for stdout and a pipe for stderr
        if (fstat(fd, &st) == 0 &&
            (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISSOCK(st.st_mode)))
            g_pipe_fd[fd - 1] = fd;
    }
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_flags = SA_RESTART | SA_RESETHAND; // Ctrl-C stops as SIGTERM does; a second one kills
    sigaction(SIGINT, &sa, NULL);
    // A log line written to a pipe whose reader has gone must not kill the rank before it
    // has checkpointed (the write fails with EPIPE instead).
    signal(SIGPIPE, SIG_IGN);
}

int signals_stop_requested(void) {
    return (int)g_stop;
}
