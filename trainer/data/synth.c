// synth.c: synthetic social-platform users whose best achievable losses are known exactly.
//
// What it is: a small latent-segment Markov process over observable events, plus the exact
// Bayes-optimal predictor of that process (posterior over segments by Bayes' rule), so that
// `data synth` can tell training what "perfect" is. What it is not: a realistic simulator.
// Every number below is in the tables further down; this block states how they are used.
//
// OBSERVABLE EVENT  (one CSV row: user,time,action,content,engagement)
//   t      time in integer milliseconds since the epoch, written as seconds with 3 decimals.
//   a      action  in {post, like, comment, share, view, follow}        (A = 6)
//   c      content in {text, image, video, link}                         (C = 4)
//   e      engagement, a count of thousandths (written with 3 decimals), at least 0.001.
//   Everything below is computed from these written values, never from unrounded ones,
//   so a reader of the CSV can recompute every likelihood (synth_score_csv does).
//
// SEGMENT  s in {lurker, creator, night_owl, bursty_sharer, casual}, drawn once per user
//   from PRIOR, never written. The user's event count n is uniform in [min_events,
//   max_events] and drawn independently of s, so sequence length says nothing about s.
//
// STATE after event i (what the next event depends on, besides s):
//   a_i;  h_i = hour of day of t_i in UTC as a real number in [0, 24);
//   w_i = 1 if t_i falls on a Saturday or Sunday (UTC), else 0;
//   b_i = engagement bucket: 0 if e_i < ENG_LOW[a_i], 2 if e_i >= ENG_HIGH[a_i], else 1.
//   d_s(h) = cos(2 pi (h - PEAK_HOUR[s]) / 24): +1 at the segment's most active hour,
//   -1 twelve hours away (night owls peak at 02:00 UTC).
//
// FIRST EVENT
//   t_0 = 2026-01-05T00:00:00Z + uniform integer ms in [0, 7 days)   (segment-free)
//   a_0 ~ softmax_a(ACT_BASE[s][a]);  c_0, e_0 as for later events.
//
// NEXT EVENT i+1 given s and state i (action and gap conditionally independent):
//   a_{i+1} ~ softmax_a( ACT_BASE[s][a] + ACT_TRANS[a_i][a] + d_s(h_i) ACT_HOUR[a]
//                        + ENG_GAIN[s] ACT_ENG[b_i][a] )
//   log g   ~ Normal( GAP_BASE[s] + GAP_ACT[s][a_i] - GAP_RHYTHM[s] d_s(h_i)
//                     + GAP_WEEKEND[s] w_i + GAP_ENG[b_i],  GAP_SIGMA[s] ),  g in seconds
//   t_{i+1} = t_i + max(1, round(1000 g)) ms     (so gaps are > 0; 1 ms never happens in
//                                                 practice: it is > 8 sigma away)
//   c_{i+1} ~ softmax_c( CONTENT_ACT[a_{i+1}][c] + CONTENT_SEG[s][c] )
//   log e   ~ Normal( log ENG_MEDIAN[a_{i+1}] + ENG_SEG[s][a_{i+1}] + ENG_CONTENT[c_{i+1}],
//                     ENG_SIGMA[s] ),  e_{i+1} = max(0.001, e rounded to 3 decimals)
//   A high engagement bucket raises the logit of posting next and shortens the next gap
//   (ACT_ENG, GAP_ENG): the feedback loop of a platform.
//
// BEST ACHIEVABLE PREDICTOR (what best.txt reports, per split, averaged over every target
// i+1 = 1..n-1 of every user):
//   log post_i(s) = log PRIOR[s] + sum_{j<=i} log p(event j | s, state j-1)   (log-sum-exp
//     normalised after every event; event 0 contributes p(a_0|s) p(c_0|s,a_0) f(e_0|s,a_0,c_0)
//     and every later one p(a|s,state) f(g|s,state) p(c|s,a) f(e|s,a,c)). t_0 is
//     segment-free. For g and e, written to 0.001, the densities stand in for the masses
//     of the rounding intervals: the relative difference is of order (0.001/x)^2, below
//     1e-6 for x >= 1 s or 1 unit, which is nearly every value drawn.
//   p*(a | history)  = sum_s post_i(s) p(a | s, state_i);   action_nll = -log p*(a_true)
//   p*(g | history)  = sum_s post_i(s) LogNormal(g; mu_s(state_i), GAP_SIGMA[s]), g in
//     seconds as written;   time_nll = -log p*(g_true)
//   action_acc       = share of targets where argmax_a p*(a | history) == a_true.
//   Also reported (comment lines of best.txt, stdout): the same numbers for the
//   segment-unknown predictor that keeps post = PRIOR, a baseline a model must beat.
//
// Randomness: counter-based streams of synth.seed: stream 0 assigns users to splits
// (exact counts round(users * frac), uniformly at random), stream 1+u draws user u.
#include "synth.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"
#include "hash.h"
#include "synth_irregular.h"
#include "synth_truth.h"
#include "util.h"

enum { N_SEG = 5, N_ACT = 6, N_ACT_MAX = 7, N_CONTENT = 4, N_BUCKET = 3 };

static const char *const SEG_NAMES[N_SEG] = {"lurker", "creator", "night_owl", "bursty_sharer",
                                             "casual"};
// "story" exists only in a period 2 of synth.drift_kind=new_action.
static const char *const ACTION_NAMES[N_ACT_MAX] = {"post", "like",   "comment", "share",
                                                    "view", "follow", "story"};
static const char *const CONTENT_NAMES[N_CONTENT] = {"text", "image", "video", "link"};
static const char *const SPLIT_NAMES[3] = {"train", "valid", "test"};
static const char *const SPLIT_FILES[3] = {"train.csv", "valid.csv", "test.csv"};

#define START_MS     1767571200000LL    // 2026-01-05T00:00:00Z, a Monday
#define WINDOW_MS    (7LL * 86400000LL) // first events spread over one week
#define DAY_MS       86400000LL
#define TWO_PI       6.283185307179586
#define LOG_SQRT_2PI 0.9189385332046727

// ---------------------------------------------------------------- the process's numbers

static const double PRIOR[N_SEG] = {0.30, 0.15, 0.15, 0.15, 0.25};
static const double PEAK_HOUR[N_SEG] = {20.0, 14.0, 2.0, 17.0, 19.0}; // UTC

// Action logits, columns post like comment share view follow.
static const double ACT_BASE[N_SEG][N_ACT] = {
    {-2.2, 0.9, -1.3, -1.5, 2.0, -1.4}, // lurker: views and likes
    {1.6, 0.0, 0.7, -0.6, 0.2, -1.2},   // creator: posts, answers comments
    {-0.4, 0.5, 1.1, -0.5, 0.9, -0.8},  // night owl: comments and views, at night
    {-0.9, -0.1, -0.9, 1.9, 0.5, -1.2}, // bursty sharer: shares
    {-0.3, 1.0, 0.0, -0.2, 1.0, -0.4},  // casual: a bit of everything
};
// Row: previous action. Habits shared by every segment (a view leads to a like, a post to
// checking its comments, sharing comes in runs).
static const double ACT_TRANS[N_ACT][N_ACT] = {
    {-0.6, 0.0, 0.8, -0.2, 0.6, -0.2}, // after post
    {0.0, 0.6, 0.0, 0.0, 0.3, 0.0},    // after like
    {0.0, 0.3, 0.7, 0.0, 0.0, 0.0},    // after comment
    {-0.2, 0.0, 0.0, 0.8, 0.0, 0.0},   // after share
    {0.0, 0.7, 0.0, 0.0, 0.3, 0.3},    // after view
    {0.0, 0.0, 0.0, 0.0, 0.6, 0.5},    // after follow
};
// Near its peak hour a user acts (posts, comments); off-peak it scrolls.
static const double ACT_HOUR[N_ACT] = {0.5, -0.2, 0.4, 0.2, -0.5, 0.0};
// Row: engagement bucket of the previous event. Strong engagement calls for another post.
static const double ACT_ENG[N_BUCKET][N_ACT] = {
    {-0.5, 0.0, 0.0, 0.0, 0.2, 0.0},
    {0.0, 0.0, 0.0, 0.0, 0.0, 0.0},
    {1.0, 0.0, 0.3, 0.0, -0.2, 0.0},
};
static const double ENG_GAIN[N_SEG] = {0.6, 1.4, 1.0, 0.8, 1.0};

// Gap model, log seconds. exp(GAP_BASE) is the median gap in a neutral state.
static const double GAP_BASE[N_SEG] = {7.8, 7.2, 7.4, 5.6, 8.1}; // 41, 22, 27, 4.5, 55 min
static const double GAP_ACT[N_SEG][N_ACT] = {
    {0.3, -0.3, 0.0, 0.2, -0.5, 0.0},  // lurker: scrolling is quick
    {0.4, -0.2, -0.4, 0.0, -0.3, 0.2}, // creator: replies come fast after comments
    {0.2, -0.3, -0.3, 0.0, -0.4, 0.0}, // night owl
    {0.3, 0.0, 0.2, -1.0, 0.0, 0.3},   // bursty sharer: shares come in bursts
    {0.2, -0.3, 0.0, 0.0, -0.4, 0.0},  // casual
};
static const double GAP_RHYTHM[N_SEG] = {1.0, 0.8, 1.2, 0.6, 1.1}; // off-peak = sleep
static const double GAP_WEEKEND[N_SEG] = {-0.3, 0.2, 0.0, -0.2, -0.5};
static const double GAP_ENG[N_BUCKET] = {0.2, 0.0, -0.5};
static const double GAP_SIGMA[N_SEG] = {0.9, 0.8, 0.9, 1.1, 1.0};

// Content logits, columns text image video link.
static const double CONTENT_ACT[N_ACT][N_CONTENT] = {
    {0.5, 0.6, 0.0, -0.5}, // post
    {0.0, 0.7, 0.3, -0.6}, // like
    {0.6, 0.4, 0.2, -0.3}, // comment
    {-0.2, 0.3, 0.2, 0.8}, // share: links travel
    {-0.3, 0.3, 0.9, 0.0}, // view: videos are watched
    {0.5, 0.2, 0.0, -0.5}, // follow
};
static const double CONTENT_SEG[N_SEG][N_CONTENT] = {
    {0.0, 0.0, 0.5, 0.0},  // lurker
    {0.0, 0.6, 0.4, -0.6}, // creator: images and video
    {-0.3, 0.0, 0.8, 0.0}, // night owl: video
    {-0.3, 0.0, 0.0, 0.9}, // bursty sharer: links
    {0.3, 0.0, 0.0, 0.0},  // casual: text
};

// Engagement: reactions a post/comment/share received, seconds spent on a liked or viewed
// item, profile score of a follow. ENG_LOW/ENG_HIGH bound the middle bucket.
static const double ENG_MEDIAN[N_ACT] = {10.0, 6.0, 15.0, 5.0, 12.0, 3.0};
static const double ENG_LOW[N_ACT] = {4.0, 2.0, 6.0, 2.0, 5.0, 1.0};
static const double ENG_HIGH[N_ACT] = {25.0, 15.0, 40.0, 12.0, 30.0, 8.0};
static const double ENG_SEG[N_SEG][N_ACT] = {
    {-0.8, 0.3, -0.5, -0.4, 0.4, 0.0},  // lurker: nobody reacts to its rare posts
    {1.2, 0.0, 0.8, 0.5, -0.2, 0.3},    // creator: its posts do well
    {0.0, 0.2, 0.2, 0.0, 0.3, 0.0},     // night owl
    {-0.2, -0.3, -0.2, 0.4, -0.5, 0.0}, // bursty sharer: skims
    {0.0, 0.0, 0.0, 0.0, 0.0, 0.0},     // casual
};
static const double ENG_CONTENT[N_CONTENT] = {0.0, 0.2, 0.5, -0.2};
static const double ENG_SIGMA[N_SEG] = {0.8, 0.9, 0.8, 0.8, 0.9};

// ---------------------------------------------------------------- derived tables

// The tables a drift (period 2) changes are copied here; the new action of new_action
// behaves like `proto[a]` ("story" like a post) in every table but its own logits.
typedef struct {
    int n_act; // N_ACT, or N_ACT_MAX with the new action
    int proto[N_ACT_MAX];
    double prior[N_SEG];
    double act_base[N_SEG][N_ACT_MAX], act_trans[N_ACT_MAX][N_ACT_MAX];
    double gap_base[N_SEG];
    int64_t start_ms; // first events spread over [start_ms, start_ms + WINDOW_MS)
    double log_prior[N_SEG];
    double p_first[N_SEG][N_ACT_MAX], log_p_first[N_SEG][N_ACT_MAX]; // p(a_0 | s)
    double p_content[N_SEG][N_ACT_MAX][N_CONTENT];                   // p(c | s, a)
    double log_p_content[N_SEG][N_ACT_MAX][N_CONTENT];
    double eng_mu[N_SEG][N_ACT_MAX][N_CONTENT]; // mean of log e
    double gap_log_sigma[N_SEG], eng_log_sigma[N_SEG];
    double cos_peak[N_SEG], sin_peak[N_SEG]; // of 2 pi PEAK_HOUR / 24
    int64_t eng_low_milli[N_ACT_MAX], eng_high_milli[N_ACT_MAX];
} Model;

static void log_softmax(const double *logits, int n, double *out) {
    double mx = logits[0];
    for (int i = 1; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp(logits[i] - mx);
    double lse = mx + log(sum);
    for (int i = 0; i < n; i++) out[i] = logits[i] - lse;
}

// The period-1 tables (the process above) into m; model_derive completes it.
static void model_tables(Model *m) {
    memset(m, 0, sizeof *m);
    m->n_act = N_ACT;
    m->start_ms = START_MS;
    for (int a = 0; a < N_ACT_MAX; a++) m->proto[a] = a < N_ACT ? a : 0;
    for (int s = 0; s < N_SEG; s++) {
        m->prior[s] = PRIOR[s], m->gap_base[s] = GAP_BASE[s];
        for (int a = 0; a < N_ACT; a++) m->act_base[s][a] = ACT_BASE[s][a];
    }
    for (int a = 0; a < N_ACT; a++)
        for (int k = 0; k < N_ACT; k++) m->act_trans[a][k] = ACT_TRANS[a][k];
}

static void model_derive(Model *m) {
    for (int s = 0; s < N_SEG; s++) {
        m->log_prior[s] = log(m->prior[s]);
        log_softmax(m->act_base[s], m->n_act, m->log_p_first[s]);
        for (int a = 0; a < m->n_act; a++) m->p_first[s][a] = exp(m->log_p_first[s][a]);
        m->gap_log_sigma[s] = log(GAP_SIGMA[s]);
        m->eng_log_sigma[s] = log(ENG_SIGMA[s]);
        m->cos_peak[s] = cos(TWO_PI * PEAK_HOUR[s] / 24.0);
        m->sin_peak[s] = sin(TWO_PI * PEAK_HOUR[s] / 24.0);
        for (int a = 0; a < m->n_act; a++) {
            double logits[N_CONTENT];
            const int pa = m->proto[a];
            for (int c = 0; c < N_CONTENT; c++) {
                logits[c] = CONTENT_ACT[pa][c] + CONTENT_SEG[s][c];
                m->eng_mu[s][a][c] = log(ENG_MEDIAN[pa]) + ENG_SEG[s][pa] + ENG_CONTENT[c];
            }
            log_softmax(logits, N_CONTENT, m->log_p_content[s][a]);
            for (int c = 0; c < N_CONTENT; c++)
                m->p_content[s][a][c] = exp(m->log_p_content[s][a][c]);
        }
    }
    for (int a = 0; a < m->n_act; a++) {
        m->eng_low_milli[a] = llround(ENG_LOW[m->proto[a]] * 1000.0);
        m->eng_high_milli[a] = llround(ENG_HIGH[m->proto[a]] * 1000.0);
    }
}

static void model_build(Model *m) {
    model_tables(m);
    model_derive(m);
}

// ---------------------------------------------------------------- events and predictions

typedef struct {
    int action, content;
    int64_t t_ms, eng_milli; // as written: ms since the epoch; engagement in thousandths
} Event;

// What every segment predicts for the event after `prev`.
typedef struct {
    double p_action[N_SEG][N_ACT_MAX], log_p_action[N_SEG][N_ACT_MAX];
    double gap_mu[N_SEG]; // mean of log(gap in seconds)
} Prediction;

static void predict_next(const Model *m, const Event *prev, Prediction *pred) {
    int64_t ms_of_day = prev->t_ms % DAY_MS;
    double hour = (double)ms_of_day / 3600000.0;
    int weekday = (int)((prev->t_ms / DAY_MS + 3) % 7); // 1970-01-01 was a Thursday; Mon = 0
    int weekend = weekday >= 5;
    const int a = prev->action, pa = m->proto[a], n_act = m->n_act;
    int bucket = prev->eng_milli < m->eng_low_milli[a]     ? 0
                 : prev->eng_milli >= m->eng_high_milli[a] ? 2
                                                           : 1;
    // d_s(h) = cos(x - x_s) = cos x cos x_s + sin x sin x_s: two libm calls, not five.
    double angle = TWO_PI * hour / 24.0, cos_h = cos(angle), sin_h = sin(angle);
    for (int s = 0; s < N_SEG; s++) {
        double d = cos_h * m->cos_peak[s] + sin_h * m->sin_peak[s];
        double logits[N_ACT_MAX], mx = -INFINITY, sum = 0;
        for (int k = 0; k < n_act; k++) {
            const int pk = m->proto[k];
            logits[k] = m->act_base[s][k] + m->act_trans[a][k] + d * ACT_HOUR[pk] +
                        ENG_GAIN[s] * ACT_ENG[bucket][pk];
            mx = logits[k] > mx ? logits[k] : mx;
        }
        // Probabilities and their logs both: the mixture needs the one, the posterior the
        // other, and this is the hot loop of generation.
        for (int k = 0; k < n_act; k++) sum += pred->p_action[s][k] = exp(logits[k] - mx);
        double log_sum = log(sum), inv_sum = 1.0 / sum;
        for (int k = 0; k < n_act; k++) {
            pred->p_action[s][k] *= inv_sum;
            pred->log_p_action[s][k] = logits[k] - mx - log_sum;
        }
        pred->gap_mu[s] = m->gap_base[s] + GAP_ACT[s][pa] - GAP_RHYTHM[s] * d +
                          GAP_WEEKEND[s] * weekend + GAP_ENG[bucket];
    }
}

// log density of a Normal(mu, sigma) at x, sigma given with its log.
static double normal_logpdf(double x, double mu, double sigma, double log_sigma) {
    double z = (x - mu) / sigma;
    return -0.5 * z * z - log_sigma - LOG_SQRT_2PI;
}

// log p(c | s, a) + log f(e | s, a, c): the part of an event's likelihood after its action.
// f is the density of log e; the -log e Jacobian is the same for every segment and dropped.
static double content_eng_loglik(const Model *m, int s, const Event *ev, double log_e) {
    return m->log_p_content[s][ev->action][ev->content] +
           normal_logpdf(log_e, m->eng_mu[s][ev->action][ev->content], ENG_SIGMA[s],
                         m->eng_log_sigma[s]);
}

// Normalises log weights in place so they log-sum-exp to 0.
static void log_normalise(double *logw, int n) {
    double mx = logw[0];
    for (int i = 1; i < n; i++) mx = logw[i] > mx ? logw[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp(logw[i] - mx);
    double lse = mx + log(sum);
    for (int i = 0; i < n; i++) logw[i] -= lse;
}

// Sums over the targets of one split, for one predictor.
typedef struct {
    double sum_action_nll, sum_time_nll;
    long long n_correct, n_targets, n_users, n_events;
} Tally;

// Log posterior over segments of one user, after the events seen so far.
typedef struct {
    double log_post[N_SEG];
} Belief;

static void belief_start(const Model *m, Belief *b, const Event *first) {
    double log_e = log((double)first->eng_milli / 1000.0);
    for (int s = 0; s < N_SEG; s++)
        b->log_post[s] = m->log_prior[s] + m->log_p_first[s][first->action] +
                         content_eng_loglik(m, s, first, log_e);
    log_normalise(b->log_post, N_SEG);
}

// Scores `next` under the mixture with weights exp(log_w) (normalised) into t.
static void score_mixture(const Model *m, const double *log_w, const Prediction *pred,
                          int true_action, double gap_s, Tally *t) {
    double p_action[N_ACT_MAX] = {0};
    double log_gap = log(gap_s), log_terms[N_SEG];
    for (int s = 0; s < N_SEG; s++) {
        double w = exp(log_w[s]);
        for (int k = 0; k < m->n_act; k++) p_action[k] += w * pred->p_action[s][k];
        log_terms[s] =
            log_w[s] + normal_logpdf(log_gap, pred->gap_mu[s], GAP_SIGMA[s], m->gap_log_sigma[s]);
    }
    int best = 0;
    for (int k = 1; k < m->n_act; k++) best = p_action[k] > p_action[best] ? k : best;
    double mx = log_terms[0], sum = 0;
    for (int s = 1; s < N_SEG; s++) mx = log_terms[s] > mx ? log_terms[s] : mx;
    for (int s = 0; s < N_SEG; s++) sum += exp(log_terms[s] - mx);
    t->sum_action_nll += -log(p_action[true_action]);
    t->sum_time_nll += -(mx + log(sum) - log_gap); // -log_gap: density of g, not of log g
    t->n_correct += best == true_action;
    t->n_targets++;
}

// Scores `next` (which followed `prev`, predicted in pred) with the Bayes predictor and the
// prior-mixture baseline, then folds `next` into the posterior.
static void score_and_update(const Model *m, Belief *b, const Prediction *pred, const Event *prev,
                             const Event *next, Tally *bayes, Tally *prior_mix) {
    double gap_s = (double)(next->t_ms - prev->t_ms) / 1000.0;
    score_mixture(m, b->log_post, pred, next->action, gap_s, bayes);
    if (prior_mix) score_mixture(m, m->log_prior, pred, next->action, gap_s, prior_mix);
    double log_gap = log(gap_s), log_e = log((double)next->eng_milli / 1000.0);
    for (int s = 0; s < N_SEG; s++)
        b->log_post[s] +=
            pred->log_p_action[s][next->action] +
            normal_logpdf(log_gap, pred->gap_mu[s], GAP_SIGMA[s], m->gap_log_sigma[s]) +
            content_eng_loglik(m, s, next, log_e);
    log_normalise(b->log_post, N_SEG);
}

// The MAP segment of a posterior (the lowest index on ties).
static int map_segment(const Belief *b) {
    int best = 0;
    for (int s = 1; s < N_SEG; s++) best = b->log_post[s] > b->log_post[best] ? s : best;
    return best;
}

static void tally_to_stats(const Tally *t, SynthSplitStats *out) {
    double n = (double)t->n_targets;
    out->action_nll = t->n_targets ? t->sum_action_nll / n : NAN;
    out->time_nll = t->n_targets ? t->sum_time_nll / n : NAN;
    out->action_acc = t->n_targets ? (double)t->n_correct / n : NAN;
    out->n_targets = t->n_targets;
    out->n_users = t->n_users;
    out->n_events = t->n_events;
}

// ---------------------------------------------------------------- sampling

// Index drawn with probabilities p[k] (which sum to 1 up to rounding).
static int draw_index(Rng *r, const double *p, int n) {
    double u = rng_uniform(r), cum = 0;
    for (int k = 0; k < n - 1; k++) {
        cum += p[k];
        if (u < cum) return k;
    }
    return n - 1;
}

// Draws content and engagement of an event whose action is set.
static void draw_content_eng(const Model *m, Rng *r, int s, Event *ev) {
    ev->content = draw_index(r, m->p_content[s][ev->action], N_CONTENT);
    double log_e = m->eng_mu[s][ev->action][ev->content] + ENG_SIGMA[s] * rng_normal(r);
    int64_t milli = llround(exp(log_e) * 1000.0);
    ev->eng_milli = milli < 1 ? 1 : milli;
}

// Draws event i (>= 1) of a user of segment s after prev: the process above, or what its
// irregular plan (synth_irregular.h) does instead. Returns 1 if the event is irregular.
static int draw_next(const Model *m, Rng *r, int s, const Event *prev, IrregularPlan *plan,
                     long long i, Prediction *pred, Event *next) {
    IrregularStep ir;
    int irregular = synth_irregular_step(plan, i, s, &ir);
    int seg = ir.segment >= 0 ? ir.segment : s;
    predict_next(m, prev, pred);
    next->action = draw_index(r, pred->p_action[seg], m->n_act);
    double gap_s = exp(pred->gap_mu[seg] + GAP_SIGMA[seg] * rng_normal(r));
    // |z| <= 8.6 for 53-bit uniforms, so gap_s < 1e10 s always; the check keeps
    // an impossible value from overflowing the time instead of trusting that.
    if (!(gap_s < 1e10)) fatal("synth: internal: gap %g s out of range", gap_s);
    if (ir.action >= 0) next->action = ir.action;
    if (ir.gap_s > 0) gap_s = ir.gap_s;
    int64_t gap_ms = llround(gap_s * 1000.0);
    next->t_ms = prev->t_ms + (gap_ms < 1 ? 1 : gap_ms);
    draw_content_eng(m, r, seg, next);
    if (ir.content >= 0) next->content = ir.content;
    if (ir.log_eng_shift != 0) {
        int64_t milli = llround((double)next->eng_milli * exp(ir.log_eng_shift));
        next->eng_milli = milli < 1 ? 1 : milli;
    }
    return irregular;
}

// ---------------------------------------------------------------- output

// One CSV being written (base/atomic_file.h: "<final>.tmp", published once all three files
// are whole), rows formatted into a big buffer of its own.
typedef struct {
    AtomicFile af;
    char *buf;
    size_t len, cap;
} CsvOut;

enum { CSV_BUF_BYTES = 1 << 22, MAX_ROW_BYTES = 160 };

// A failed write has already removed its temp file; the others go with fatal's cleanup of
// *.csv.tmp, so a partial file never stays behind, under any name.
static void csv_flush(CsvOut *out) {
    if (af_write(&out->af, out->buf, out->len) != 0) fatal("%s", out->af.err);
    out->len = 0;
}

static void csv_open(CsvOut *out, const char *dir, const char *name) {
    char path[CFG_PATH_LEN + 32];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path) fatal("%s: directory name too long", dir);
    if (af_open(&out->af, path, 0, 0) != 0) fatal("%s", out->af.err);
    out->cap = CSV_BUF_BYTES;
    out->buf = xmalloc(out->cap);
    static const char header[] = SYNTH_COLUMNS "\n";
    memcpy(out->buf, header, sizeof header - 1);
    out->len = sizeof header - 1;
}

// Flushes, fsyncs and closes; the publish happens once all three files are whole.
static void csv_finish(CsvOut *out) {
    csv_flush(out);
    if (af_sync(&out->af) != 0) fatal("%s", out->af.err);
    free(out->buf);
    out->buf = NULL;
}

static char *put_uint(char *p, uint64_t v) {
    char digits[20];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = digits[--n];
    return p;
}

// A non-negative count of thousandths as "123.456".
static char *put_milli(char *p, int64_t v) {
    p = put_uint(p, (uint64_t)(v / 1000));
    int frac = (int)(v % 1000);
    p[0] = '.';
    p[1] = (char)('0' + frac / 100);
    p[2] = (char)('0' + frac / 10 % 10);
    p[3] = (char)('0' + frac % 10);
    return p + 4;
}

static void csv_row(CsvOut *out, const char *user_id, size_t user_len, const Event *ev) {
    if (out->len + MAX_ROW_BYTES > out->cap) csv_flush(out);
    char *p = out->buf + out->len;
    memcpy(p, user_id, user_len);
    p += user_len;
    *p++ = ',';
    p = put_milli(p, ev->t_ms);
    *p++ = ',';
    size_t n = strlen(ACTION_NAMES[ev->action]);
    memcpy(p, ACTION_NAMES[ev->action], n);
    p += n;
    *p++ = ',';
    n = strlen(CONTENT_NAMES[ev->content]);
    memcpy(p, CONTENT_NAMES[ev->content], n);
    p += n;
    *p++ = ',';
    p = put_milli(p, ev->eng_milli);
    *p++ = '\n';
    out->len = (size_t)(p - out->buf);
}

static void format_report(const SynthReport *bayes, const SynthReport *prior_mix, StrBuf *sb) {
    sb_appendf(sb, "# best achievable losses of the synthetic process (trainer/synth.c)\n");
    sb_appendf(sb, "# action_nll, time_nll in nats (gap in seconds); action_acc top-1\n");
    for (int k = 0; k < 3; k++) {
        const SynthSplitStats *st = &bayes->split[k];
        sb_appendf(sb,
                   "split %s action_nll %.10f time_nll %.10f action_acc %.6f targets %lld "
                   "users %lld events %lld\n",
                   SPLIT_NAMES[k], st->action_nll, st->time_nll, st->action_acc, st->n_targets,
                   st->n_users, st->n_events);
    }
    if (prior_mix) {
        sb_appendf(sb, "# baseline: segment unknown, posterior kept at the prior\n");
        for (int k = 0; k < 3; k++)
            sb_appendf(sb, "# prior_mixture %s action_nll %.10f time_nll %.10f action_acc %.6f\n",
                       SPLIT_NAMES[k], prior_mix->split[k].action_nll, prior_mix->split[k].time_nll,
                       prior_mix->split[k].action_acc);
    }
}

// ---------------------------------------------------------------- generate

// One period's users into dir: the three CSVs, truth.csv and best.txt.
static void generate_period(const Config *cfg, const Model *model, const char *dir,
                            uint64_t seed, SynthReport *report) {
    double t_start = now_seconds();
    long long n_users = cfg->synth.users;
    long long min_ev = cfg->synth.min_events, max_ev = cfg->synth.max_events;
    if (n_users < 1 || min_ev < 2 || max_ev < min_ev)
        fatal("synth: need users >= 1 and 2 <= min_events <= max_events (got %lld, %lld, %lld)",
              n_users, min_ev, max_ev);
    if (mkdir_p(dir) != 0) fatal("%s: cannot create directory (%s)", dir, strerror(errno));

    // best.txt marks a complete set: remove it first, so a crash part-way through the
    // renames below can never pair new CSVs with an old report.
    char best_path[CFG_PATH_LEN + 32];
    snprintf(best_path, sizeof best_path, "%s/best.txt", dir);
    if (unlink(best_path) != 0 && errno != ENOENT)
        fatal("%s: cannot remove stale report (%s)", best_path, strerror(errno));

    CsvOut out[3];
    // A full disk or any error leaves no *.csv.tmp (of any of the three files) behind.
    int stale = remove_matching(dir, ".csv.tmp");
    if (stale) printf("synth: removed %d partial *.csv.tmp file(s) of an earlier run\n", stale);
    cleanup_register(dir, ".csv.tmp");
    for (int k = 0; k < 3; k++) csv_open(&out[k], dir, SPLIT_FILES[k]);

    Tally bayes[3], prior_mix[3];
    memset(bayes, 0, sizeof bayes);
    memset(prior_mix, 0, sizeof prior_mix);
    long long seg_users[N_SEG] = {0};
    long long left_valid = llround((double)n_users * cfg->synth.valid_frac);
    long long left_test = llround((double)n_users * cfg->synth.test_frac);
    if (left_valid + left_test > n_users) left_test = n_users - left_valid;
    Rng split_rng = rng_make(seed, 0);
    Prediction pred;
    SynthTruthOut truth;
    synth_truth_open(&truth, dir);
    long long irregular_users[IRR_N_KINDS] = {0};

    for (long long u = 0; u < n_users; u++) {
        // Sequential selection: exact split sizes, every assignment equally likely.
        uint64_t x = rng_below(&split_rng, (uint64_t)(n_users - u));
        int split = 0;
        if (x < (uint64_t)left_valid) {
            split = 1;
            left_valid--;
        } else if (x < (uint64_t)(left_valid + left_test)) {
            split = 2;
            left_test--;
        }

        char user_id[32];
        int id_len = snprintf(user_id, sizeof user_id, "u%07lld", u);
        Rng r = rng_make(seed, 1 + (uint64_t)u);
        int s = draw_index(&r, model->prior, N_SEG);
        long long n_ev = min_ev + (long long)rng_below(&r, (uint64_t)(max_ev - min_ev + 1));
        seg_users[s]++;

        Event prev, next;
        prev.t_ms = model->start_ms + (int64_t)rng_below(&r, (uint64_t)WINDOW_MS);
        prev.action = draw_index(&r, model->p_first[s], model->n_act);
        draw_content_eng(model, &r, s, &prev);
        csv_row(&out[split], user_id, (size_t)id_len, &prev);
        Belief belief;
        belief_start(model, &belief, &prev);

        IrregularPlan plan; // irregular users are labelled in truth.csv, not scored below
        synth_irregular_plan(cfg, (uint64_t)u, n_ev, &plan);
        irregular_users[plan.kind]++;
        for (long long i = 1; i < n_ev; i++) {
            draw_next(model, &r, s, &prev, &plan, i, &pred, &next);
            csv_row(&out[split], user_id, (size_t)id_len, &next);
            if (plan.kind == IRR_NONE)
                score_and_update(model, &belief, &pred, &prev, &next, &bayes[split],
                                 &prior_mix[split]);
            prev = next;
        }
        synth_truth_row(&truth, user_id, SEG_NAMES[s], SEG_NAMES[map_segment(&belief)],
                        plan.kind == IRR_NONE ? "" : IRREGULAR_KIND_NAMES[plan.kind], plan.start);
        bayes[split].n_users++;
        bayes[split].n_events += n_ev;
        prior_mix[split].n_users++;
        prior_mix[split].n_events += n_ev;
    }

    for (int k = 0; k < 3; k++) csv_finish(&out[k]);
    for (int k = 0; k < 3; k++)
        if (af_publish(&out[k].af) != 0) fatal("%s", out[k].af.err);
    cleanup_unregister(dir, ".csv.tmp");

    double segment_acc = synth_truth_finish(&truth); // before best.txt, which marks a whole set
    SynthReport prior_report;
    for (int k = 0; k < 3; k++) {
        tally_to_stats(&bayes[k], &report->split[k]);
        tally_to_stats(&prior_mix[k], &prior_report.split[k]);
    }
    StrBuf text = {0};
    format_report(report, &prior_report, &text);
    sb_appendf(&text, "# bayes_segment_acc %.6f users %lld (truth.csv: MAP segment after the whole "
                      "history == true segment)\n",
               segment_acc, n_users);
    char err[512];
    if (write_file_atomic(best_path, text.data, text.len, err, sizeof err) != 0) fatal("%s", err);
    sb_free(&text);

    double secs = now_seconds() - t_start;
    long long total = 0;
    for (int k = 0; k < 3; k++) total += report->split[k].n_events;
    const SynthSplitStats *v = &report->split[1];
    printf("synth: %lld users (train %lld, valid %lld, test %lld), %lld events "
           "(train %lld, valid %lld, test %lld) -> %s\n",
           n_users, report->split[0].n_users, v->n_users, report->split[2].n_users, total,
           report->split[0].n_events, v->n_events, report->split[2].n_events, dir);
    printf("synth: segments");
    for (int s = 0; s < N_SEG; s++)
        printf(" %s %.1f%%", SEG_NAMES[s], 100.0 * (double)seg_users[s] / (double)n_users);
    printf("\n");
    printf("synth: best valid action_nll %.4f (prior mixture %.4f, uniform %.4f) "
           "time_nll %.4f (prior mixture %.4f) action_acc %.4f\n",
           v->action_nll, prior_report.split[1].action_nll, log((double)model->n_act), v->time_nll,
           prior_report.split[1].time_nll, v->action_acc);
    printf("synth: segment recovered by the Bayes posterior (truth.csv bayes_segment) for %.4f "
           "of users\n",
           segment_acc);
    if (cfg->synth.irregular_frac > 0) {
        printf("synth: irregular users (truth.csv; not in the best losses)");
        for (int k = 1; k < IRR_N_KINDS; k++)
            printf(" %s %lld", IRREGULAR_KIND_NAMES[k], irregular_users[k]);
        printf("\n");
    }
    printf("synth: %.2f s, %.3g events/s\n", secs, secs > 0 ? (double)total / secs : 0.0);
    fflush(stdout);
}

// Period 2 of synth.drift_kind at strength k in [0, 1] (0: the same process).
static void model_drift(Model *m, const char *kind, double k) {
    static const double MIX[N_SEG] = {0.05, 0.40, 0.10, 0.40, 0.05}; // creators and sharers
    // New habits: a view leads to a share, a like to a comment, a post to another post.
    static const double HABITS[N_ACT][N_ACT] = {
        {1.0, 0.0, -0.8, 0.0, -0.4, 0.0}, {0.0, -0.6, 1.0, 0.0, 0.0, 0.0},
        {0.0, 0.0, -0.6, 0.6, 0.0, 0.0},  {0.0, 0.0, 0.0, -0.8, 0.6, 0.0},
        {0.0, -0.7, 0.0, 1.2, -0.3, 0.0}, {0.0, 0.0, 0.0, 0.0, -0.6, 0.0},
    };
    m->start_ms = START_MS + 4 * WINDOW_MS; // four weeks later
    if (strcmp(kind, "segment_mix") == 0)
        for (int s = 0; s < N_SEG; s++) m->prior[s] = (1 - k) * PRIOR[s] + k * MIX[s];
    if (strcmp(kind, "habits") == 0)
        for (int a = 0; a < N_ACT; a++)
            for (int b = 0; b < N_ACT; b++) m->act_trans[a][b] += k * HABITS[a][b];
    if (strcmp(kind, "tempo") == 0)
        for (int s = 0; s < N_SEG; s++) m->gap_base[s] -= 0.8 * k; // gaps 0.45x at k = 1
    if (strcmp(kind, "new_action") == 0) {
        // "story": as popular as views at k = 1, otherwise a post in every table.
        m->n_act = N_ACT_MAX;
        for (int s = 0; s < N_SEG; s++)
            m->act_base[s][N_ACT] = ACT_BASE[s][4] - 4.0 * (1 - k);
        for (int a = 0; a < N_ACT_MAX; a++) {
            m->act_trans[a][N_ACT] = ACT_TRANS[m->proto[a]][0];
            m->act_trans[N_ACT][a] = ACT_TRANS[0][m->proto[a]];
        }
    }
}

void synth_generate(const Config *cfg, SynthReport *report) {
    Model model;
    model_build(&model);
    generate_period(cfg, &model, cfg->synth.out_dir, (uint64_t)cfg->synth.seed, report);
    if (strcmp(cfg->synth.drift_kind, "none") == 0) return;
    char dir[CFG_PATH_LEN + 16];
    snprintf(dir, sizeof dir, "%s/period2", cfg->synth.out_dir);
    model_tables(&model);
    model_drift(&model, cfg->synth.drift_kind, cfg->synth.drift_strength);
    model_derive(&model);
    SynthReport rep2;
    printf("synth: period 2 (synth.drift_kind=%s, strength %g) -> %s\n", cfg->synth.drift_kind,
           cfg->synth.drift_strength, dir);
    generate_period(cfg, &model, dir, mix64((uint64_t)cfg->synth.seed ^ 0x5045524944320000ULL),
                    &rep2);
}

// ---------------------------------------------------------------- read back

// Parses one "split NAME key value ..." line; returns the split index or -1. Every key must
// appear exactly once: a key we do not know means a file we do not understand.
static int parse_split_line(char *line, SynthSplitStats *st) {
    static const char *const KEYS[6] = {"action_nll", "time_nll", "action_acc",
                                        "targets",    "users",    "events"};
    char *save = NULL;
    char *tok = strtok_r(line, " \t\r", &save);
    if (!tok || strcmp(tok, "split") != 0) return -1;
    char *name = strtok_r(NULL, " \t\r", &save);
    int k = -1;
    for (int i = 0; i < 3 && name; i++)
        if (strcmp(name, SPLIT_NAMES[i]) == 0) k = i;
    if (k < 0) return -1;
    double real[3] = {0};
    long long count[3] = {0};
    int seen = 0; // one bit per key
    while ((tok = strtok_r(NULL, " \t\r", &save))) {
        char *val = strtok_r(NULL, " \t\r", &save), *end = NULL;
        int key = -1;
        for (int i = 0; i < 6; i++)
            if (strcmp(tok, KEYS[i]) == 0) key = i;
        if (!val || key < 0 || (seen & (1 << key))) return -1;
        errno = 0;
        if (key < 3)
            real[key] = strtod(val, &end);
        else
            count[key - 3] = strtoll(val, &end, 10);
        if (errno || end == val || *end) return -1;
        seen |= 1 << key;
    }
    if (seen != 63) return -1;
    st->action_nll = real[0];
    st->time_nll = real[1];
    st->action_acc = real[2];
    st->n_targets = count[0];
    st->n_users = count[1];
    st->n_events = count[2];
    return k;
}

int synth_read_report(const char *out_dir, SynthReport *report) {
    char path[CFG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/best.txt", out_dir);
    char *text = read_file(path, NULL);
    if (!text) return -1;
    SynthReport got;
    memset(&got, 0, sizeof got);
    int have = 0, rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == 0) continue;
        SynthSplitStats st;
        int k = parse_split_line(line, &st);
        if (k < 0 || (have & (1 << k))) {
            rc = -1;
            break;
        }
        got.split[k] = st;
        have |= 1 << k;
    }
    free(text);
    if (rc != 0 || have != 7) return -1;
    *report = got;
    return 0;
}

// ---------------------------------------------------------------- score a CSV

// Parses "123.456" (digits, a dot, exactly three digits) into thousandths. -1 if malformed.
static int parse_milli(const char *s, const char *end, int64_t *out) {
    int64_t whole = 0;
    const char *p = s;
    if (p == end || *p < '0' || *p > '9') return -1;
    while (p < end && *p >= '0' && *p <= '9') {
        if (whole > (INT64_MAX / 1000 - 9) / 10) return -1;
        whole = whole * 10 + (*p++ - '0');
    }
    if (end - p != 4 || p[0] != '.') return -1;
    for (int i = 1; i < 4; i++)
        if (p[i] < '0' || p[i] > '9') return -1;
    *out = whole * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10 + (p[3] - '0');
    return 0;
}

static int lookup_name(const char *s, size_t n, const char *const *names, int count) {
    for (int i = 0; i < count; i++)
        if (strlen(names[i]) == n && memcmp(s, names[i], n) == 0) return i;
    return -1;
}

// One row of the generator's CSV (user,time,action,content,engagement) between p and nl:
// its fields and the event; -1 for anything the generator does not write.
static int parse_row(const char *p, const char *nl, const char **field, const char **field_end,
                     size_t user_cap, Event *ev) {
    const char *q = p;
    int nf = 0;
    while (nf < 5) {
        field[nf] = q;
        while (q < nl && *q != ',') q++;
        field_end[nf++] = q;
        if (q >= nl) break;
        q++;
    }
    size_t ulen = (size_t)(field_end[0] - field[0]);
    if (nf != 5 || q != nl || ulen == 0 || ulen >= user_cap ||
        parse_milli(field[1], field_end[1], &ev->t_ms) != 0 ||
        parse_milli(field[4], field_end[4], &ev->eng_milli) != 0 || ev->eng_milli < 1)
        return -1;
    ev->action = lookup_name(field[2], (size_t)(field_end[2] - field[2]), ACTION_NAMES, N_ACT);
    ev->content = lookup_name(field[3], (size_t)(field_end[3] - field[3]), CONTENT_NAMES, N_CONTENT);
    return ev->action < 0 || ev->content < 0 ? -1 : 0;
}

int synth_score_csv(const char *csv_path, SynthSplitStats *bayes, SynthSplitStats *prior_mix) {
    size_t size = 0;
    char *text = read_file(csv_path, &size);
    if (!text) {
        warnf("%s: cannot read (%s)", csv_path, strerror(errno));
        return -1;
    }
    Model model;
    model_build(&model);
    uint64_t *irregular_ids; // users truth.csv marks irregular are not scored, as in best.txt
    long long n_irregular = truth_irregular_ids(csv_path, &irregular_ids);
    int skip_user = 0;
    Tally t_bayes = {0}, t_prior = {0};
    Belief belief;
    Prediction pred;
    Event prev = {0};
    char user[64] = "";
    size_t user_len = 0;
    int rc = 0;
    long long line_no = 1;
    const char *p = text, *end = text + size;
    const char *nl = memchr(p, '\n', size);
    if (!nl || (size_t)(nl - p) != strlen(SYNTH_COLUMNS) ||
        memcmp(p, SYNTH_COLUMNS, strlen(SYNTH_COLUMNS)) != 0) {
        warnf("%s:1: header is not %s", csv_path, SYNTH_COLUMNS);
        free(text);
        return -1;
    }
    for (p = nl + 1; p < end; p = nl + 1) {
        line_no++;
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        const char *field[5], *field_end[5];
        Event ev;
        if (parse_row(p, nl, field, field_end, sizeof user, &ev) != 0) {
            warnf("%s:%lld: not a row the generator writes", csv_path, line_no);
            rc = -1;
            break;
        }
        size_t ulen = (size_t)(field_end[0] - field[0]);
        if (ulen != user_len || memcmp(user, field[0], ulen) != 0) {
            memcpy(user, field[0], ulen);
            user_len = ulen;
            belief_start(&model, &belief, &ev);
            skip_user = truth_ids_contain(irregular_ids, n_irregular, user, ulen);
            t_bayes.n_users++;
            t_prior.n_users++;
        } else {
            if (ev.t_ms <= prev.t_ms) {
                warnf("%s:%lld: time does not increase within user", csv_path, line_no);
                rc = -1;
                break;
            }
            if (!skip_user) {
                predict_next(&model, &prev, &pred);
                score_and_update(&model, &belief, &pred, &prev, &ev, &t_bayes, &t_prior);
            }
        }
        t_bayes.n_events++;
        t_prior.n_events++;
        prev = ev;
        if (nl == end) break;
    }
    free(text);
    free(irregular_ids);
    if (rc != 0) return -1;
    if (bayes) tally_to_stats(&t_bayes, bayes);
    if (prior_mix) tally_to_stats(&t_prior, prior_mix);
    return 0;
}
