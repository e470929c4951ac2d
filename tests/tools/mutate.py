#!/usr/bin/env python3
"""mutate.py: mutation testing of the suite. Not part of CI (each mutant is a rebuild and a
test run); run it and report its score:

    python3 tests/tools/mutate.py                 # every mutant not judged yet; table + score
    python3 tests/tools/mutate.py --check         # only check that every mutant applies once
    python3 tests/tools/mutate.py --only NAME...  # (re)judge some mutants
    python3 tests/tools/mutate.py --fresh         # forget earlier results, judge all again
    python3 tests/tools/mutate.py --table         # print the table of the results so far

Each mutant is a small, realistic bug: an exact text replacement that must match exactly
once in its file (the tool fails loudly when the code moved) and that compiles (with
-Werror). It is applied alone to a scratch copy of the working tree (--scratch, default
/tmp/mutate-scratch; one copy, reused: files are synced by content, so rebuilds are
incremental), the Release build there is rebuilt, then judged:
  1. its hint: `ctest -R` of the tests most likely to kill it (the catalogue's last field);
  2. only if it survives that: the rest of the Release ctest (-LE 'slurm|slow', -j2,
     --stop-on-failure, --timeout).
KILLED if a test fails or times out; SURVIVED if every test passes; BUILD-ERROR (a catalogue
bug, not counted in the score) if it does not compile. A kill in step 2 is confirmed by running
the failing tests again: FLAKY (counted as not killed) if they pass then. The mutated file is restored after
each mutant. Results go to out/mutate.json, written after every mutant: an interrupted run
continues where it stopped (a result is reused while the mutant's text is unchanged).

A survivor is either killed by a new test or argued equivalent in one line: EQUIVALENT
below lists them with the argument (they are not run and count apart).
"""
import argparse, hashlib, json, os, re, shutil, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1"

# (name, layer, file, old, new, what the bug is, tests likely to kill it: a ctest -R regex)
MUTANTS = [
    # nn
    ("forget_grad", "nn", "trainer/nn/lstm_cell.c",
     "gf[j] = dc_ * cpj * f_ * ((real)1 - f_);",
     "gf[j] = dc_ * cpj * f_;",
     "forget-gate derivative missing (1 - f)", "gradcheck|opcheck|reference"),
    ("cell_reset", "nn", "trainer/nn/lstm_cell.c",
     "dcb[j] = k * dc_ * f_;",
     "dcb[j] = dc_ * f_;",
     "cell gradient crosses a lane reset", "gradcheck|reference"),
    ("time_grad", "nn", "trainer/nn/model.c",
     "dt[1] = (real)(lc->w_time * (1.0 - diff * diff * inv_var));",
     "dt[1] = (real)(lc->w_time * (1.0 - diff * inv_var));",
     "wrong d time-NLL / d log sigma", "gradcheck|reference"),
    ("mix_mu_grad", "nn", "trainer/nn/time_mix.c",
     "dy[M + m] = (real)(scale * (-post[m] * z * inv_s));",
     "dy[M + m] = (real)(scale * (-post[m] * z));",
     "mixture time head: d NLL / d mu missing 1 / sigma", "opcheck|gradcheck"),
    ("dropout_out_grad", "nn", "trainer/nn/model.c",
     "for (size_t i = 0; i < (size_t)TB * H; i++) dH[i] *= a->mask_out[i];",
     "for (size_t i = 0; i < (size_t)TB * H; i++) dH[i] *= 1;",
     "output dropout's mask left out of backward", "gradcheck"),
    ("topk_ties", "nn", "trainer/nn/model.c",
     "rank += (k != tgt && y[k] >= y[tgt]);",
     "rank += (k != tgt && y[k] > y[tgt]);",
     "ties counted for the target in top-k", "opcheck|units|reference"),
    ("forget_bias", "nn", "trainer/nn/model.c",
     "m->p.bias[l][s->hidden + j] = 1; // forget gate",
     "m->p.bias[l][s->hidden + j] = 0; // forget gate",
     "forget-gate bias initialised to 0 instead of 1", "gradcheck|reference|resume_exact"),
    ("decay_bias", "nn", "trainer/nn/optim.c",
     "const float wd = ti->decay ? (float)oc->weight_decay : 0.0f;",
     "const float wd = (float)oc->weight_decay;",
     "weight decay applied to biases", "optim|reference"),
    ("bias_corr", "nn", "trainer/nn/optim.c",
     "const float step_size = lr / bc1, mom = (float)oc->momentum;",
     "const float step_size = lr, mom = (float)oc->momentum; (void)bc1;",
     "Adam without first-moment bias correction", "optim|reference"),
    ("clip_formula", "nn", "trainer/nn/optim.c",
     "return oc->clip_norm / (grad_norm + 1e-6);",
     "return oc->clip_norm / (grad_norm + 1.0);",
     "clip factor off", "optim|reference"),
    ("warmup", "nn", "trainer/nn/optim.c",
     "return oc->lr * (double)(step + 1) / (double)oc->warmup_steps;",
     "return oc->lr * (double)step / (double)oc->warmup_steps;",
     "warm-up starts at lr 0", "optim|reference|units"),
    ("adamw_shrink", "nn", "trainer/nn/optim.c",
     "u.shrink = oc->kind == OPT_ADAMW ? 1.0f - lr * wd : 1.0f;",
     "u.shrink = oc->kind == OPT_ADAMW ? 1.0f - wd : 1.0f;",
     "AdamW's decoupled decay not scaled by the learning rate", "optim|reference"),
    ("recurrent_grad", "nn", "trainer/nn/lstm_cell.c",
     "real dh_ = dhb[j] + kn * dr[j];",
     "real dh_ = dhb[j] + 0 * kn * dr[j];",
     "the recurrent gradient dh(t+1) -> h(t) dropped (truncated BPTT of 1)", "gradcheck|opcheck|reference"),
    # run
    ("clip_sum", "run", "trainer/run/step.c",
     "r.grad_norm = sqrt(sum_squares(m->grads, m->n_params)) / n_global;",
     "r.grad_norm = sqrt(sum_squares(m->grads, m->n_params));",
     "clipping on the summed instead of the mean gradient", "reference|multirank_equiv"),
    ("nonfinite_ignored", "run", "trainer/run/step.c",
     "r.skipped = r.h.nonfinite > 0 || n_global <= 0;",
     "r.skipped = n_global <= 0;",
     "a non-finite gradient is applied", "nonfinite"),
    ("fixed_point", "run", "trainer/run/step.c",
     "for (size_t i = 0; i < m->n_params; i++) m->grads[i] = (float)((double)fx[i] / FIXED_SCALE);",
     "for (size_t i = 0; i < m->n_params; i++) m->grads[i] = (float)((double)fx[i] / FIXED_SCALE / 2);",
     "reproducible mode halves the gradient", "multirank_equiv|resume_exact"),
    ("last_bucket", "run", "trainer/run/gradsync.c",
     "for (int b = 0; b < gs->group_n[g]; b++)",
     "for (int b = 0; b < gs->group_n[g] - 1; b++)",
     "last bucket of a group never reduced", "multirank_equiv"),
    ("keep_flag", "run", "trainer/run/batch.c",
     "bb->keep[r] = !isnan(prev_time);",
     "bb->keep[r] = 1;",
     "lane state carried into a new user", "reference|units|gradcheck|multirank_equiv"),
    ("gap_target", "run", "trainer/run/batch.c",
     "bb->tgt_loggap[r] = (real)log(ev_time(nx) - t_e + fs->gap_offset);",
     "bb->tgt_loggap[r] = (real)log(ev_time(nx) - t_e + 2 * fs->gap_offset);",
     "gap target with the wrong offset", "units|reference"),
    ("epoch_wrap", "run", "trainer/run/batch.c",
     "if (c->next >= n) c->epoch++, c->next = 0;",
     "if (c->next >= n) c->next = 0;",
     "shard epochs never advance (same order every epoch)", "units|resume_exact"),
    ("resume_epoch", "run", "trainer/run/train.c",
     "    memcpy(tr->ts.lane, d->lanes + tr->ts.first_lane, sizeof(LaneCursor) * (size_t)tr->lanes);",
     "    for (int s = 0; s < tr->ds.n_shards; s++) tr->ts.shard[s].epoch = 0;\n    memcpy(tr->ts.lane, d->lanes + tr->ts.first_lane, sizeof(LaneCursor) * (size_t)tr->lanes);",
     "resume loses the shard epochs", "resume_exact"),
    ("resume_moments", "run", "trainer/run/train.c",
     "memcpy(tr->opt.v, d->adam_v, sizeof(float) * tr->model->n_params);",
     "memset(tr->opt.v, 0, sizeof(float) * tr->model->n_params);",
     "resume drops Adam's v", "ckpt_io|resume_exact"),
    ("stop_ignored", "run", "trainer/run/train.c",
     "if (r.h.stop > 0) {",
     "if (r.h.stop > 1) {",
     "a stop signal is ignored", "preempt_signal|resume_exact"),
    ("eval_split", "run", "trainer/run/train.c",
     "evaluate_local(tr->model, &tr->ds, SPLIT_VALID,",
     "evaluate_local(tr->model, &tr->ds, SPLIT_TRAIN,",
     "validation on the training users", "units|eval_ranks|report"),
    ("unfolded_emb", "run", "trainer/nn/model.c",
     "    if (hooks && hooks->bucket_ready) hooks->bucket_ready(hooks->ctx, -1);\n}\n\ndouble model_train_flops_per_event",
     "    (void)0;\n}\n\ndouble model_train_flops_per_event",
     "the embedding bucket never allreduced on the unfolded path", "multirank_equiv"),
    # comm
    ("header_max", "comm", "comm/comm.c",
     "for (int i = g_header_len - 2; i < g_header_len; i++) b[i] = a[i] > b[i] ? a[i] : b[i];",
     "for (int i = g_header_len - 2; i < g_header_len; i++) b[i] = b[i];",
     "flags of other ranks dropped in the header reduction", "nonfinite|preempt_signal"),
    ("allreduce_max", "comm", "comm/comm.c",
     "allreduce(x, n, MPI_DOUBLE, MPI_MAX, \"allreduce (max)\");",
     "allreduce(x, n, MPI_DOUBLE, MPI_MIN, \"allreduce (max)\");",
     "max reduction takes the min", "kmeans_ranks|eval_ranks|segment"),
    ("argmin_tie", "comm", "comm/comm.c",
     "all[r].tie < all[best].tie",
     "all[r].tie > all[best].tie",
     "ties of the rank argmin broken by the largest id (P-dependent k-means seeds)", "kmeans_ranks|kmeans|segment"),
    # data
    ("split_salt", "data", "trainer/data/ingest.c",
     "uh = userkey_split_hash(uh, split);",
     "(void)0;",
     "the same id in two given split files becomes one user", "data_splits"),
    ("unkeyed", "data", "trainer/data/userkey.c",
     "return siphash24(k->key, raw_id, len);",
     "static const uint8_t zero[16];\n    (void)k;\n    return siphash24(zero, raw_id, len);",
     "user ids hashed without the key", "data_splits|units|privacy"),
    ("payload_checksum", "data", "trainer/data/shards.c",
     "if (hash_bytes(buf + sizeof *h, size - sizeof *h, 0) != h->payload_checksum) {",
     "if (0) {",
     "shard payload checksum not verified", "data_errors|checkpoint_corrupt|data_determinism"),
    ("fp_min_events", "data", "trainer/data/fingerprint.c",
     "\"data.virtual_shards\", \"data.min_events\",  \"model.gap_offset\",",
     "\"data.virtual_shards\", \"model.gap_offset\",",
     "data.min_events missing from the data fingerprint (stale shards reused)", "data_determinism|data_errors"),
    # base
    ("no_fsync", "base", "trainer/base/atomic_file.c",
     "if (fsync(f->fd) != 0) return fail(f, \"fsync\", errno);",
     "(void)0;",
     "temp file renamed without fsync", "durable_order"),
    ("no_dir_fsync", "base", "trainer/base/atomic_file.c",
     "if (fsync_dir_of(f->path) != 0) {",
     "if (0) {",
     "directory not fsynced after the rename", "durable_order"),
    ("tmp_left", "base", "trainer/base/atomic_file.c",
     "if (f->open) unlink(f->tmp);",
     "(void)0;",
     "a failed write leaves its temp file", "checkpoint_faults|disk_full"),
    # ckpt
    ("record_checksum", "ckpt", "trainer/run/checkpoint.c",
     "if (hash_bytes(msg, len, 0) != h) {",
     "if (0) {",
     "checkpoint record checksums not verified", "checkpoint_corrupt|fuzz_checkpoint"),
    ("keep_k", "ckpt", "trainer/run/checkpoint.c",
     "if (steps[i] == just_written || kept < keep) {",
     "if (steps[i] == just_written || kept <= keep) {",
     "one checkpoint too many kept", "ckpt_io|rundir|checkpoint_faults"),
    ("ckpt_newest", "ckpt", "trainer/run/checkpoint.c",
     "if (n) qsort(*steps, (size_t)n, sizeof(long long), cmp_desc);",
     "(void)cmp_desc;",
     "checkpoints taken in directory order, not newest first", "ckpt_io|rundir|checkpoint_corrupt|resume_exact"),
    ("ckpt_no_fallback", "ckpt", "trainer/run/checkpoint.c",
     "    for (int i = 0; i < n; i++) {\n        char p[CFG_PATH_LEN + 64], err[512];",
     "    for (int i = 0; i < n && i < 1; i++) {\n        char p[CFG_PATH_LEN + 64], err[512];",
     "a damaged newest checkpoint is not skipped for an older one", "checkpoint_corrupt|checkpoint_faults"),
    ("best_rotated", "ckpt", "trainer/run/checkpoint.c",
     "if (steps[i] == protect && steps[i] != just_written) continue;",
     "if (0) continue;",
     "keep-K rotation deletes the best checkpoint", "keep_best"),
    ("best_forgotten", "run", "trainer/run/train.c",
     "    best_restore(&tr->best, &d->best);\n",
     "",
     "resume forgets the best value and the patience count", "keep_best"),
    ("vocab_by_position", "run", "trainer/run/warmstart.c",
     "if (strcmp(old->vocab[v][i], cur->vocab[v][j]) == 0) map[j] = i, seen[i] = 1;",
     "if (i == j) map[j] = i, seen[i] = 1;",
     "warm start matches vocabularies by position", "warmstart"),
    ("stats_not_folded", "run", "trainer/run/warmstart.c",
     "if (rc == 0 && strcmp(cfg->train.init_stats, \"keep\") == 0)",
     "if (0)",
     "train.init_stats=keep ignored", "warmstart"),
    # config
    ("int_max", "config", "trainer/config/config.c",
     "    if (x < k->min || x > k->max) {",
     "    if (x < k->min || (!is_int && x > k->max)) {",
     "integer keys never checked against their maximum", "config_ranges"),
    ("unknown_key", "config", "trainer/config/config.c",
     "report(st, where, path, \"unknown key%s\", hint);",
     "(void)hint;",
     "an unknown key in an experiment file silently ignored", "config_errors"),
    # signals
    ("sigusr1", "signals", "trainer/base/signals.c",
     "    sigaction(SIGUSR1, &sa, NULL);\n",
     "",
     "SIGUSR1 not handled (the process dies without a checkpoint)", "preempt_signal|resume_exact"),
    # dp
    ("dp_no_clip", "dp", "trainer/run/step.c",
     "double f = n > 0 ? (norm > C ? C / norm : 1.0) / n : 0;",
     "double f = n > 0 ? 1.0 / n : 0;",
     "per-user gradients not clipped to privacy.clip", "dp|lane_grad|dp_train"),
    ("dp_noise_scale", "dp", "trainer/run/step.c",
     "const double sd = st->dpc.sigma * st->dpc.clip;",
     "const double sd = st->dpc.sigma;",
     "noise standard deviation sigma instead of sigma * clip", "dp|dp_train"),
    ("dp_noise_slice", "dp", "trainer/run/step.c",
     "const size_t lo = n * r / P, hi = n * (r + 1) / P;",
     "const size_t lo = 0 * r * P, hi = n;",
     "every rank adds the whole noise vector (variance P times too large)", "dp_train"),
    ("dp_rate", "dp", "trainer/run/dp.c",
     "d->q = E / (double)n_users;",
     "d->q = E / (double)n_users / 2;",
     "sampling rate half of batch_size / users", "dp|dp_train"),
    # score
    ("flag_rate_arg", "score", "trainer/cmd/score.c",
     "double rate = rate_arg >= 0 ? rate_arg : sc.cfg.score.flag_rate;",
     "double rate = sc.cfg.score.flag_rate + 0 * rate_arg;",
     "score --flag-rate ignored", "irregular"),
    ("threshold_off", "score", "trainer/run/surprise.c",
     "return scores[k - 1];",
     "return scores[k < n ? k : n - 1];",
     "flag threshold one user too high (one user fewer flagged)", "irregular_core|irregular"),
    # serve
    ("serve_order", "serve", "trainer/run/live.c",
     "if (!isnan(u->queued_time) && ev_time(record) < u->queued_time) return -1;",
     "if (0 && ev_time(record) < u->queued_time) return -1;",
     "serve accepts an event older than the user's previous one", "serve"),
    ("serve_topk", "serve", "trainer/cmd/serve.c",
     "if (y[o->order[j]] > y[o->order[i]]) {",
     "if (y[o->order[j]] < y[o->order[i]]) {",
     "serve's top actions are the least likely ones", "serve"),
    # explain
    ("ig_baseline", "explain", "trainer/run/attribution.c",
     "double a = ((double)x[o] - (double)at->base_row[j]) * G[o] / m;",
     "double a = (double)x[o] * G[o] / m;",
     "integrated gradients without the baseline (x G instead of (x - x') G)", "explain_units|explain"),
    # segment
    ("kmeans_restarts", "segment", "trainer/run/kmeans.c",
     "for (int r = 0; r < (kc->restarts > 0 ? kc->restarts : 1); r++) {",
     "for (int r = 0; r < 1; r++) {",
     "k-means restarts ignored (one seeding only)", "kmeans|kmeans_ranks|segment"),
    # report
    ("html_escape", "report", "trainer/report/svg.c",
     ": *s == '<' ? \"&lt;\"",
     ": *s == '<' ? \"<\"",
     "'<' not escaped in the report page (a user-controlled name injects HTML)", "report_units|report"),
    ("confusion_t", "report", "trainer/report/report_valid.c",
     "vd->confusion[(size_t)tgt * K + best] += 1;",
     "vd->confusion[(size_t)best * K + tgt] += 1;",
     "confusion matrix transposed (rows predicted, not true)", "report_units|report"),
]

# Survivors argued equivalent (name: why no test can tell): none so far.
EQUIVALENT = {}


def key_of(m):
    return hashlib.sha1(json.dumps(m[:5]).encode()).hexdigest()[:12]


def check(root, mutants):
    bad = []
    for m in mutants:
        full = os.path.join(root, m[2])
        n = open(full).read().count(m[3]) if os.path.exists(full) else -1
        if n != 1:
            bad.append("%s: %s matches %d times" % (m[0], m[2], n))
    names = [m[0] for m in MUTANTS]
    bad += ["%s: the name is used twice" % n for n in set(names) if names.count(n) > 1]
    return bad


def sh(cmd, cwd, timeout):
    t0 = time.time()
    try:
        p = subprocess.run(cmd, cwd=cwd, shell=True, capture_output=True, text=True,
                           timeout=timeout)
        return p.returncode, p.stdout + p.stderr, time.time() - t0
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return 124, out, time.time() - t0


def sync(scratch):
    """Copies the working tree's tracked and untracked files into scratch where they differ
    (a fresh mtime, so make rebuilds what changed; this also undoes a mutant left behind)."""
    files = subprocess.run("git ls-files -co --exclude-standard -z", cwd=ROOT, shell=True,
                           capture_output=True).stdout.decode().split("\0")
    n = 0
    for f in filter(None, files):
        src, dst = os.path.join(ROOT, f), os.path.join(scratch, f)
        if not os.path.isfile(src):
            continue
        data = open(src, "rb").read()
        if os.path.exists(dst) and open(dst, "rb").read() == data:
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "wb").write(data)
        shutil.copymode(src, dst)
        n += 1
    return n


def failed_tests(out):
    names = re.findall(r"^\s*\d+ - (\S+) \((Failed|Timeout|SEGFAULT|Subprocess aborted|Child aborted|"
                       r"Exception|Interrupt)", out, re.M)
    return ",".join(n for n, _ in names)


def ctest(scratch, args, timeout, test_timeout):
    """(verdict, the tests that failed, the tail of the output when some failed)."""
    cmd = "%s ctest --test-dir build -j2 --timeout %d --output-on-failure %s" % (ENV, test_timeout, args)
    rc, out, _ = sh(cmd, scratch, timeout)
    if rc == 124:
        return "KILLED", "ctest timeout", out[-4000:]
    if rc != 0:
        return "KILLED", failed_tests(out) or "ctest rc %d" % rc, out[-4000:]
    if re.search(r"No tests were found", out):
        return "NOTESTS", "", ""
    return "SURVIVED", "", ""


def judge(m, a):
    name, layer, path, old, new, what, hint = m
    full = os.path.join(a.scratch, path)
    orig = open(full).read()
    open(full, "w").write(orig.replace(old, new, 1))
    try:
        t0 = time.time()
        rc, out, _ = sh("cmake --build build -j2", a.scratch, 1800)
        if rc != 0:
            errs = [l for l in out.splitlines() if "error" in l][:3]
            return {"verdict": "BUILD-ERROR", "killed_by": " | ".join(errs)[:300],
                    "stage": "build", "seconds": round(time.time() - t0, 1)}
        hint_re = "^(%s)$" % hint
        v, by, log = ctest(a.scratch, "--stop-on-failure -R '%s'" % hint_re, a.timeout, a.test_timeout)
        stage = "hint"
        if v != "KILLED":
            # The rest of the suite, unit tests first (ctest would start them last: cost data).
            stage = "full"
            rest = (a.ctest_args.replace("-LE '", "-LE 'unit|", 1) if "-LE '" in a.ctest_args
                    else a.ctest_args + " -LE unit")
            for part in ("-L unit " + a.ctest_args, rest):
                v, by, log = ctest(a.scratch, "--stop-on-failure %s -E '%s'" % (part, hint_re),
                                   a.timeout, a.test_timeout)
                if v == "KILLED":
                    break
            # A kill by a test the hint did not expect is run again: a timing race of a loaded
            # machine is not a kill (FLAKY, not counted as killed).
            if v == "KILLED" and by and "timeout" not in by:
                v2, _, _ = ctest(a.scratch, "-R '^(%s)$'" % by.replace(",", "|"), a.timeout,
                                 a.test_timeout)
                if v2 != "KILLED":
                    v, by = "FLAKY", by + " (passed when run again)"
        # The failing output's tail: a kill by an unrelated test may be a flaky test, not the mutant.
        return {"verdict": v, "killed_by": by, "stage": stage, "seconds": round(time.time() - t0, 1),
                "log": log}
    finally:
        open(full, "w").write(orig)


def table(mutants, results):
    rows = []
    for m in mutants:
        r = results.get(m[0])
        if m[0] in EQUIVALENT:
            r = {"verdict": "EQUIVALENT", "killed_by": EQUIVALENT[m[0]], "stage": "", "seconds": 0}
        if not r:
            continue
        rows.append((m, r))
        print("%-18s %-8s %-11s %-5s %6.0fs  %s%s" % (
            m[0], m[1], r["verdict"], r["stage"], r["seconds"], m[5],
            ("  [" + r["killed_by"] + "]") if r["killed_by"] else ""))
    judged = [r for m, r in rows if r["verdict"] in ("KILLED", "SURVIVED", "FLAKY")]
    killed = sum(r["verdict"] == "KILLED" for r in judged)
    print("\nscore: %d of %d killed (%.1f%%)%s" % (
        killed, len(judged), 100.0 * killed / max(1, len(judged)),
        "; %d equivalent, not counted" % len(EQUIVALENT) if EQUIVALENT else ""))
    for m, r in rows:
        if r["verdict"] not in ("KILLED", "EQUIVALENT"):
            print("  %s: %s (%s: %s)" % (r["verdict"].lower(), m[0], m[2], m[5]))
    missing = [m[0] for m in mutants if m[0] not in results and m[0] not in EQUIVALENT]
    if missing:
        print("  not judged yet: " + " ".join(missing))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--scratch", default="/tmp/mutate-scratch")
    ap.add_argument("--results", default=os.path.join(ROOT, "out", "mutate.json"))
    ap.add_argument("--ctest-args", default="-LE 'slurm|slow'")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds for one ctest run")
    ap.add_argument("--test-timeout", type=int, default=400, help="ctest --timeout")
    a = ap.parse_args()
    mutants = MUTANTS
    bad = check(ROOT, mutants)
    if bad:
        print("mutants that do not apply exactly once (the code moved; update the catalogue):")
        print("\n".join("  " + b for b in bad))
        return 2
    print("%d mutants apply exactly once" % len(mutants))
    if a.check:
        return 0
    results = {}
    if os.path.exists(a.results) and not a.fresh:
        results = {k: v for k, v in json.load(open(a.results)).items()
                   if any(m[0] == k and key_of(m) == v.get("key") for m in mutants)}
    if a.table:
        table(mutants, results)
        return 0
    todo = [m for m in mutants if m[0] not in EQUIVALENT and
            (m[0] in a.only if a.only is not None else m[0] not in results)]
    os.makedirs(a.scratch, exist_ok=True)
    changed = sync(a.scratch)
    print("scratch %s: %d files updated; %d mutants to judge" % (a.scratch, changed, len(todo)),
          flush=True)
    # Configured every time (quick when nothing changed): a build that has to re-run cmake
    # itself after a merge moved CMakeLists can race with its own parallel jobs.
    rc, out, _ = sh("cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DTRAINER_WERROR=ON",
                    a.scratch, 600)
    if rc != 0:
        print(out[-3000:]); return 1
    rc, out, _ = sh("cmake --build build -j2", a.scratch, 3600)
    if rc != 0:
        print(out[-3000:]); print("the unmutated build fails"); return 1
    os.makedirs(os.path.dirname(a.results), exist_ok=True)
    t_all = time.time()
    for m in todo:
        r = judge(m, a)
        r["key"] = key_of(m)
        results[m[0]] = r
        tmp = a.results + ".tmp"
        json.dump(results, open(tmp, "w"), indent=1)
        os.replace(tmp, a.results)
        print("%-18s %-8s %-11s %-5s %6.0fs  %s%s" % (m[0], m[1], r["verdict"], r["stage"],
              r["seconds"], m[5], ("  [" + r["killed_by"] + "]") if r["killed_by"] else ""),
              flush=True)
    sh("cmake --build build -j2", a.scratch, 3600)  # the scratch build unmutated again
    print("\n%d mutants judged in %.0f s\n" % (len(todo), time.time() - t_all))
    table(mutants, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
