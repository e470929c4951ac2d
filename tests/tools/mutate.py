#!/usr/bin/env python3
"""mutate.py: mutation testing of the suite. Not part of CI (each mutant is a rebuild and a
test run); run it and report its score:

    python3 tests/tools/mutate.py                 # every mutant, table + score
    python3 tests/tools/mutate.py --check         # only check that every mutant applies once
    python3 tests/tools/mutate.py --only NAME...  # some mutants
    python3 tests/tools/mutate.py --ctest-args "-L unit"   # judged by a subset

Each mutant is a small, realistic bug: an exact text replacement that must match exactly
once in its file (the tool fails loudly when the code moved). A mutant is applied alone to
a scratch copy of the working tree (build dir reused, so rebuilds are incremental), the
Release build is rebuilt, and the Release ctest judges it: KILLED if a test fails (or the
build breaks, reported apart), SURVIVED if every test passes. The scratch copy is
restored after each mutant. Results go to stdout as a table and to out/mutate.json.
"""
import argparse, json, os, shutil, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (name, layer, file, old, new, what the bug is)
MUTANTS = [
    # nn: LSTM backward, heads, optimizer
    ("forget_grad", "nn", "trainer/nn/lstm_cell.c",
     "gf[j] = dc_ * cpj * f_ * ((real)1 - f_);", "gf[j] = dc_ * cpj * f_;",
     "forget-gate derivative missing (1 - f)"),
    ("cell_reset", "nn", "trainer/nn/lstm_cell.c",
     "dcb[j] = k * dc_ * f_;", "dcb[j] = dc_ * f_;",
     "cell gradient crosses a lane reset"),
    ("time_grad", "nn", "trainer/nn/model.c",
     "dt[1] = (real)(lc->w_time * (1.0 - diff * diff * inv_var));",
     "dt[1] = (real)(lc->w_time * (1.0 - diff * inv_var));",
     "wrong d time-NLL / d log sigma"),
    ("mix_mu_grad", "nn", "trainer/nn/time_mix.c",
     "dy[M + m] = (real)(scale * (-post[m] * z * inv_s));",
     "dy[M + m] = (real)(scale * (-post[m] * z));",
     "mixture time head: d NLL / d mu missing 1 / sigma"),
    ("dropout_out_grad", "nn", "trainer/nn/model.c",
     "for (size_t i = 0; i < (size_t)TB * H; i++) dH[i] *= a->mask_out[i];",
     "for (size_t i = 0; i < (size_t)TB * H; i++) dH[i] *= 1;",
     "output dropout's mask left out of backward"),
    ("topk_ties", "nn", "trainer/nn/model.c",
     "rank += (k != tgt && y[k] >= y[tgt]);", "rank += (k != tgt && y[k] > y[tgt]);",
     "ties counted for the target in top-k"),
    ("forget_bias", "nn", "trainer/nn/model.c",
     "m->p.bias[l][s->hidden + j] = 1; // forget gate", "m->p.bias[l][s->hidden + j] = 0; // forget gate",
     "forget-gate bias initialised to 0 instead of 1"),
    ("decay_bias", "nn", "trainer/nn/optim.c",
     "const float wd = ti->decay ? (float)oc->weight_decay : 0.0f;",
     "const float wd = (float)oc->weight_decay;", "weight decay applied to biases"),
    ("bias_corr", "nn", "trainer/nn/optim.c",
     "const float step_size = lr / bc1, mom = (float)oc->momentum;",
     "const float step_size = lr, mom = (float)oc->momentum; (void)bc1;",
     "Adam without first-moment bias correction"),
    ("clip_formula", "nn", "trainer/nn/optim.c",
     "return oc->clip_norm / (grad_norm + 1e-6);", "return oc->clip_norm / (grad_norm + 1.0);",
     "clip factor off"),
    ("warmup", "nn", "trainer/nn/optim.c",
     "return oc->lr * (double)(step + 1) / (double)oc->warmup_steps;",
     "return oc->lr * (double)step / (double)oc->warmup_steps;", "warm-up starts at lr 0"),
    # run: the step, gradsync, batches, training loop
    ("clip_sum", "run", "trainer/run/step.c",
     "r.grad_norm = sqrt(sum_squares(m->grads, m->n_params)) / n_global;",
     "r.grad_norm = sqrt(sum_squares(m->grads, m->n_params));",
     "clipping on the summed instead of the mean gradient"),
    ("nonfinite_ignored", "run", "trainer/run/step.c",
     "r.skipped = r.h.nonfinite > 0 || n_global <= 0;", "r.skipped = n_global <= 0;",
     "a non-finite gradient is applied"),
    ("fixed_point", "run", "trainer/run/step.c",
     "for (size_t i = 0; i < m->n_params; i++) m->grads[i] = (float)((double)fx[i] / FIXED_SCALE);",
     "for (size_t i = 0; i < m->n_params; i++) m->grads[i] = (float)((double)fx[i] / FIXED_SCALE / 2);",
     "reproducible mode halves the gradient"),
    ("last_bucket", "run", "trainer/run/gradsync.c",
     "for (int b = 0; b < gs->group_n[g]; b++)", "for (int b = 0; b < gs->group_n[g] - 1; b++)",
     "last bucket of a group never reduced"),
    ("keep_flag", "run", "trainer/run/batch.c",
     "bb->keep[r] = !isnan(prev_time);", "bb->keep[r] = 1;", "lane state carried into a new user"),
    ("gap_target", "run", "trainer/run/batch.c",
     "bb->tgt_loggap[r] = (real)log(ev_time(nx) - t_e + fs->gap_offset);",
     "bb->tgt_loggap[r] = (real)log(ev_time(nx) - t_e + 2 * fs->gap_offset);",
     "gap target with the wrong offset"),
    ("epoch_wrap", "run", "trainer/run/batch.c",
     "if (c->next >= n) c->epoch++, c->next = 0;", "if (c->next >= n) c->next = 0;",
     "shard epochs never advance (same order every epoch)"),
    ("resume_epoch", "run", "trainer/run/train.c",
     "    memcpy(tr->ts.lane, d->lanes + tr->ts.first_lane, sizeof(LaneCursor) * (size_t)tr->lanes);",
     "    for (int s = 0; s < tr->ds.n_shards; s++) tr->ts.shard[s].epoch = 0;\n"
     "    memcpy(tr->ts.lane, d->lanes + tr->ts.first_lane, sizeof(LaneCursor) * (size_t)tr->lanes);",
     "resume loses the shard epochs"),
    ("resume_moments", "run", "trainer/run/train.c",
     "memcpy(tr->opt.v, d->adam_v, sizeof(float) * tr->model->n_params);",
     "memset(tr->opt.v, 0, sizeof(float) * tr->model->n_params);", "resume drops Adam's v"),
    ("stop_ignored", "run", "trainer/run/train.c",
     "if (r.h.stop > 0) {", "if (r.h.stop > 1) {", "a stop signal is ignored"),
    ("eval_split", "run", "trainer/run/train.c",
     "evaluate_local(tr->model, &tr->ds, SPLIT_VALID,", "evaluate_local(tr->model, &tr->ds, SPLIT_TRAIN,",
     "validation on the training users"),
    # comm
    ("header_max", "comm", "comm/comm.c",
     "for (int i = g_header_len - 2; i < g_header_len; i++) b[i] = a[i] > b[i] ? a[i] : b[i];",
     "for (int i = g_header_len - 2; i < g_header_len; i++) b[i] = b[i];",
     "flags of other ranks dropped in the header reduction"),
    ("allreduce_max", "comm", "comm/comm.c",
     "allreduce(x, n, MPI_DOUBLE, MPI_MAX, \"allreduce (max)\");",
     "allreduce(x, n, MPI_DOUBLE, MPI_MIN, \"allreduce (max)\");",
     "max reduction takes the min"),
    # data
    ("split_salt", "data", "trainer/data/ingest.c",
     "uh = userkey_split_hash(uh, split);", "(void)0;",
     "the same id in two given split files becomes one user"),
    ("unkeyed", "data", "trainer/data/userkey.c",
     "return siphash24(k->key, raw_id, len);",
     "static const uint8_t zero[16];\n    (void)k;\n    return siphash24(zero, raw_id, len);",
     "user ids hashed without the key"),
    ("payload_checksum", "data", "trainer/data/shards.c",
     "if (hash_bytes(buf + sizeof *h, size - sizeof *h, 0) != h->payload_checksum) {",
     "if (0) {", "shard payload checksum not verified"),
    # base: durable writes
    ("no_fsync", "base", "trainer/base/atomic_file.c",
     "if (fsync(f->fd) != 0) return fail(f, \"fsync\", errno);", "(void)0;",
     "temp file renamed without fsync"),
    ("no_dir_fsync", "base", "trainer/base/atomic_file.c",
     "if (fsync_dir_of(f->path) != 0) {", "if (0) {", "directory not fsynced after the rename"),
    ("tmp_left", "base", "trainer/base/atomic_file.c",
     "if (f->open) unlink(f->tmp);", "(void)0;", "a failed write leaves its temp file"),
    # checkpoints
    ("record_checksum", "run", "trainer/run/checkpoint.c",
     "if (hash_bytes(msg, len, 0) != h) {", "if (0) {", "checkpoint record checksums not verified"),
    ("keep_k", "run", "trainer/run/checkpoint.c",
     "if (steps[i] == just_written || kept < keep) {", "if (steps[i] == just_written || kept <= keep) {",
     "one checkpoint too many kept"),
    # config
    ("int_max", "config", "trainer/config/config.c",
     "    if (x < k->min || x > k->max) {", "    if (x < k->min || (!is_int && x > k->max)) {",
     "integer keys never checked against their maximum"),
    ("unknown_key", "config", "trainer/config/config.c",
     "PLACEHOLDER_UNKNOWN_KEY", "PLACEHOLDER_UNKNOWN_KEY", "placeholder"),
    # signals
    ("sigusr1", "base", "trainer/base/signals.c",
     "PLACEHOLDER_SIGUSR1", "PLACEHOLDER_SIGUSR1", "placeholder"),
]


def load_catalogue():
    return [m for m in MUTANTS if not m[3].startswith("PLACEHOLDER")]


def check(root, mutants):
    bad = []
    for name, layer, path, old, new, what in mutants:
        full = os.path.join(root, path)
        n = open(full).read().count(old) if os.path.exists(full) else -1
        if n != 1:
            bad.append("%s: %s matches %d times" % (name, path, n))
    return bad


def run(cmd, cwd, timeout):
    t0 = time.time()
    try:
        p = subprocess.run(cmd, cwd=cwd, shell=True, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr, time.time() - t0
    except subprocess.TimeoutExpired as e:
        return 124, (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else str(e.stdout), time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--scratch", default="/tmp/mutate-scratch")
    ap.add_argument("--ctest-args", default="-LE 'slurm|slow' --stop-on-failure")
    ap.add_argument("--timeout", type=int, default=900)
    a = ap.parse_args()
    mutants = load_catalogue()
    if a.only:
        mutants = [m for m in mutants if m[0] in a.only]
    bad = check(ROOT, mutants)
    if bad:
        print("mutants that do not apply exactly once (the code moved; update the catalogue):")
        print("\n".join("  " + b for b in bad))
        return 2
    print("%d mutants apply exactly once" % len(mutants))
    if a.check:
        return 0
    # Scratch copy of the working tree (tracked and untracked files, no build dirs).
    if os.path.exists(a.scratch):
        shutil.rmtree(a.scratch)
    files = subprocess.run("git ls-files -co --exclude-standard", cwd=ROOT, shell=True,
                           capture_output=True, text=True).stdout.split()
    for f in files:
        dst = os.path.join(a.scratch, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), dst)
    build = os.path.join(a.scratch, "build")
    rc, out, _ = run("cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2",
                     a.scratch, 1800)
    if rc != 0:
        print(out[-3000:]); print("the unmutated build fails"); return 1
    env = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1"
    rows = []
    for name, layer, path, old, new, what in mutants:
        full = os.path.join(a.scratch, path)
        orig = open(full).read()
        open(full, "w").write(orig.replace(old, new, 1))
        rc, out, bt = run("cmake --build build -j2", a.scratch, 900)
        if rc != 0:
            verdict, secs, failed = "KILLED (build)", bt, "build"
        else:
            rc, out, tt = run("%s ctest --test-dir build -j2 --timeout 600 %s" % (env, a.ctest_args),
                              a.scratch, a.timeout)
            failed = ",".join(l.split("-", 1)[1].split("(")[0].strip() for l in out.splitlines()
                              if l.strip().startswith(tuple("0123456789")) and "(Failed" in l
                              or "(Timeout" in l)[:80]
            verdict = "SURVIVED" if rc == 0 else "KILLED"
            secs = bt + tt
        open(full, "w").write(orig)
        rows.append({"name": name, "layer": layer, "file": path, "bug": what, "verdict": verdict,
                     "killed_by": failed if verdict != "SURVIVED" else "", "seconds": round(secs, 1)})
        print("%-18s %-7s %-16s %6.1fs  %s%s" % (name, layer, verdict, secs, what,
              ("  [" + failed + "]") if failed and verdict != "SURVIVED" else ""), flush=True)
    run("cmake --build build -j2", a.scratch, 900)
    killed = sum(r["verdict"].startswith("KILLED") for r in rows)
    print("\nscore: %d of %d killed (%.0f%%)" % (killed, len(rows), 100.0 * killed / max(1, len(rows))))
    for r in rows:
        if r["verdict"] == "SURVIVED":
            print("  survived: %s (%s: %s)" % (r["name"], r["file"], r["bug"]))
    os.makedirs(os.path.join(ROOT, "out"), exist_ok=True)
    json.dump(rows, open(os.path.join(ROOT, "out", "mutate.json"), "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
