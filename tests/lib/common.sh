# common.sh: helpers of every bash test, including those that need no trainer binary
# (sourced by lib.sh; tests that do not take a binary source it alone).

# Commands that start MPI as a singleton (one place to add launcher settings).
mpi() { "$@"; }
# 0 if no process listens on TCP port $1 of this machine.
port_free() { [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
