/* mpi_allreduce: times MPI_Allreduce (MPI_FLOAT, MPI_SUM) over a list of message sizes.
 *
 * A baseline next to tern's own benchmark (scripts/bench-baselines.sh); built with mpicc by
 * tools/baselines/build.sh, not by CMake.
 *
 *   mpi_allreduce [-b MIN] [-e MAX] [-f FACTOR] [-s 256K,1M,...] [-w WARMUP] [-n ITERS]
 *                 [--min-iters M] [--budget SECONDS] [--json] [-o FILE] [--no-check]
 *
 * Sizes are bytes (suffix K, M, G = 2^10, 2^20, 2^30), rounded down to whole floats. Each
 * iteration starts after a barrier and is timed on every rank; the iteration's time is the
 * slowest rank's. Reported per size: median (and min/max) over the timed iterations, algbw =
 * bytes / median, busbw = algbw * 2(n-1)/n (GB/s = 1e9 B/s), and #wrong: elements of the
 * result that differ from the exact expected sum (all ranks, last iteration).
 * --budget S: after the warmup, the number of timed iterations is chosen so that they take
 * about S seconds, between --min-iters and -n.
 * Output: a table (default), or with --json the common baseline JSON on stdout; -o FILE writes
 * that JSON to FILE in addition.
 */
#include <mpi.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIZES 64

typedef struct {
  size_t bytes;
  size_t count;
  int iters;
  double median_s, min_s, max_s;
  long long wrong;
} result_t;

static int rank_, nranks_;

static void die(const char *msg) {
  if (rank_ == 0) fprintf(stderr, "mpi_allreduce: %s\n", msg);
  MPI_Abort(MPI_COMM_WORLD, 2);
  exit(2);
}

static size_t parse_size(const char *s) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || v < 0) die("bad size (use e.g. 4096, 256K, 1M, 1G)");
  double mul = 1;
  switch (*end) {
    case 'k': case 'K': mul = 1024.0; end++; break;
    case 'm': case 'M': mul = 1024.0 * 1024.0; end++; break;
    case 'g': case 'G': mul = 1024.0 * 1024.0 * 1024.0; end++; break;
    default: break;
  }
  if (*end == 'B' || *end == 'b') end++;
  if (*end != '\0') die("bad size suffix (use K, M or G)");
  return (size_t)(v * mul);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void usage(void) {
  if (rank_ == 0)
    fprintf(stderr,
            "usage: mpi_allreduce [-b MIN] [-e MAX] [-f FACTOR] [-s SIZE,SIZE,...] [-w WARMUP] [-n ITERS]\n"
            "                     [--min-iters M] [--budget SECONDS] [--json] [-o FILE] [--no-check]\n"
            "sizes in bytes with optional K/M/G suffix; default -b 1M -e 64M -f 4, -w 2 -n 20\n");
}

/* Element i of rank r's input: small integers, so the float sum is exact for any rank count. */
static inline float input_value(size_t i, int r) { return (float)((i % 13) + 1) * (float)(r + 1); }

static void format_json(FILE *f, const result_t *res, int nres, int warmup) {
  fprintf(f, "{\"tool\": \"mpi_allreduce\", \"nodes\": %d, \"dtype\": \"float32\", \"op\": \"sum\", \"warmup\": %d, \"results\": [",
          nranks_, warmup);
  for (int i = 0; i < nres; i++) {
    const result_t *r = &res[i];
    double algbw = (double)r->bytes / r->median_s / 1e9;
    double busbw = algbw * 2.0 * (nranks_ - 1) / nranks_;
    fprintf(f,
            "%s\n  {\"bytes\": %zu, \"count\": %zu, \"iters\": %d, \"median_ms\": %.4f, \"min_ms\": %.4f, "
            "\"max_ms\": %.4f, \"algbw_GBps\": %.6f, \"busbw_GBps\": %.6f, \"wrong\": %lld}",
            i ? "," : "", r->bytes, r->count, r->iters, r->median_s * 1e3, r->min_s * 1e3, r->max_s * 1e3, algbw,
            busbw, r->wrong);
  }
  fprintf(f, "\n]}\n");
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks_);

  size_t sizes[MAX_SIZES];
  int nsizes = 0;
  size_t bmin = 1u << 20, bmax = 64u << 20;
  double factor = 4;
  int warmup = 2, iters = 20, min_iters = 3, json = 0, check = 1;
  double budget = 0;
  const char *out_path = NULL;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) { usage(); die("option needs a value"); } i++; } while (0)
    if (!strcmp(a, "-b")) { NEEDV(); bmin = parse_size(v); }
    else if (!strcmp(a, "-e")) { NEEDV(); bmax = parse_size(v); }
    else if (!strcmp(a, "-f")) { NEEDV(); factor = atof(v); }
    else if (!strcmp(a, "-s") || !strcmp(a, "--sizes")) {
      NEEDV();
      char *copy = strdup(v), *save = NULL;
      for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (nsizes == MAX_SIZES) die("too many sizes");
        sizes[nsizes++] = parse_size(tok);
      }
      free(copy);
    }
    else if (!strcmp(a, "-w") || !strcmp(a, "--warmup")) { NEEDV(); warmup = atoi(v); }
    else if (!strcmp(a, "-n") || !strcmp(a, "--iters")) { NEEDV(); iters = atoi(v); }
    else if (!strcmp(a, "--min-iters")) { NEEDV(); min_iters = atoi(v); }
    else if (!strcmp(a, "--budget")) { NEEDV(); budget = atof(v); }
    else if (!strcmp(a, "-o") || !strcmp(a, "--out")) { NEEDV(); out_path = v; }
    else if (!strcmp(a, "--json")) json = 1;
    else if (!strcmp(a, "--no-check")) check = 0;
    else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); MPI_Finalize(); return 0; }
    else { usage(); die("unknown option"); }
#undef NEEDV
  }
  if (nsizes == 0) {
    if (factor <= 1.0 || bmin == 0) die("-f must be > 1 and -b > 0");
    for (double s = (double)bmin; s <= (double)bmax + 0.5 && nsizes < MAX_SIZES; s *= factor) sizes[nsizes++] = (size_t)s;
  }
  if (iters < 1 || warmup < 0) die("-n must be >= 1 and -w >= 0");
  if (min_iters < 1) min_iters = 1;
  if (min_iters > iters) min_iters = iters;

  result_t res[MAX_SIZES];
  int nres = 0;
  if (!json && rank_ == 0) {
    printf("# mpi_allreduce: %d ranks, float32 sum, warmup %d, iters %d%s\n", nranks_, warmup, iters,
           budget > 0 ? " (fewer when over budget)" : "");
    printf("# %12s %11s %6s %11s %11s %11s %11s %7s\n", "bytes", "count", "iters", "median_ms", "min_ms", "algbw_GB/s",
           "busbw_GB/s", "#wrong");
    fflush(stdout);
  }

  for (int si = 0; si < nsizes; si++) {
    size_t count = sizes[si] / sizeof(float);
    if (count == 0) continue;
    if (count > (size_t)INT32_MAX) die("size too large for one MPI_Allreduce call (max 2^31-1 floats)");
    size_t bytes = count * sizeof(float);
    float *send = malloc(bytes), *recv = malloc(bytes);
    if (!send || !recv) die("out of memory");
    for (size_t i = 0; i < count; i++) send[i] = input_value(i, rank_);

    double t, tmax = 0;
    for (int w = 0; w < warmup; w++) {
      memset(recv, 0, bytes);
      MPI_Barrier(MPI_COMM_WORLD);
      t = MPI_Wtime();
      MPI_Allreduce(send, recv, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      t = MPI_Wtime() - t;
      MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    }
    int n_it = iters;
    if (budget > 0 && warmup > 0 && tmax > 0) {  /* tmax is identical on every rank */
      double want = budget / tmax;
      n_it = want < min_iters ? min_iters : (want > iters ? iters : (int)want);
    }
    double *times = malloc(sizeof(double) * (size_t)n_it), *tall = malloc(sizeof(double) * (size_t)n_it);
    for (int it = 0; it < n_it; it++) {
      memset(recv, 0, bytes);
      MPI_Barrier(MPI_COMM_WORLD);
      t = MPI_Wtime();
      MPI_Allreduce(send, recv, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      times[it] = MPI_Wtime() - t;
    }
    MPI_Allreduce(times, tall, n_it, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);

    long long wrong = 0, wrong_all = 0;
    if (check) {
      const float tri = (float)nranks_ * (float)(nranks_ + 1) / 2.0f;
      for (size_t i = 0; i < count; i++)
        if (recv[i] != (float)((i % 13) + 1) * tri) wrong++;
    }
    MPI_Allreduce(&wrong, &wrong_all, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);

    qsort(tall, (size_t)n_it, sizeof(double), cmp_double);
    result_t *r = &res[nres++];
    r->bytes = bytes;
    r->count = count;
    r->iters = n_it;
    r->median_s = (n_it % 2) ? tall[n_it / 2] : 0.5 * (tall[n_it / 2 - 1] + tall[n_it / 2]);
    r->min_s = tall[0];
    r->max_s = tall[n_it - 1];
    r->wrong = check ? wrong_all : -1;
    if (!json && rank_ == 0) {
      double algbw = (double)bytes / r->median_s / 1e9;
      printf("  %12zu %11zu %6d %11.3f %11.3f %11.4f %11.4f %7lld\n", bytes, count, n_it, r->median_s * 1e3,
             r->min_s * 1e3, algbw, algbw * 2.0 * (nranks_ - 1) / nranks_, r->wrong);
      fflush(stdout);
    }
    free(times);
    free(tall);
    free(send);
    free(recv);
  }

  int bad = 0;
  for (int i = 0; i < nres; i++) bad |= res[i].wrong > 0;
  if (rank_ == 0) {
    if (json) format_json(stdout, res, nres, warmup);
    if (out_path) {
      FILE *f = fopen(out_path, "w");
      if (!f) { perror(out_path); bad = 1; }
      else { format_json(f, res, nres, warmup); fclose(f); }
    }
    if (bad) fprintf(stderr, "mpi_allreduce: WRONG RESULTS\n");
  }
  MPI_Finalize();
  return bad ? 1 : 0;
}
