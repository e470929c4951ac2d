#!/usr/bin/python3
"""torch_cpu_clock.py: runs ../shared/bench/torch_lstm.py with its timer, time.perf_counter,
replaced by time.process_time, so its events/s are events per CPU second of the process (as
`trainer bench`'s events_per_cpu_s): a figure that holds on a shared, loaded machine where
wall-clock rates do not. Meaningful for one thread only (--threads 1; process_time sums all
threads). Everything else, including its output line, is torch_lstm.py's own.

    /usr/bin/python3 tests/bench/torch_cpu_clock.py PATH/torch_lstm.py --hidden 128 --threads 1
"""
import runpy
import sys
import time

if len(sys.argv) < 2:
    sys.exit(__doc__)
time.perf_counter = time.process_time  # torch_lstm.py looks it up at every call
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
