/*
 * The machine's physical reference: a single-producer / single-consumer
 * ring of 64-byte records in MAP_SHARED | MAP_ANONYMOUS memory shared by a
 * process and its fork()ed child. C11 atomics: the producer publishes its
 * position with a release store every BATCH records, the consumer reads it
 * with an acquire load and hands space back (release) every BATCH records.
 * Positions live on separate cache lines. Nothing else: no doorbell, both
 * sides spin, so this is the floor for "shared memory between processes".
 *
 *   ring tput <records> <runs> <warmup>   one JSON line per run: {"seconds":S,"messages":N}
 *   ring rtt <round trips> <runs> <warmup> one JSON line per run: {"p50":..,"p99":..,"p999":..} (us)
 *
 * BENCH_PIN=1 pins the parent to CPU 0 and the child to CPU 1.
 * Built by the bench runner with `cc -O2 -std=c11`.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RECORD 64
#define SLOTS (1u << 16) /* 4 MiB of records */
#define BATCH 64
#define LINE 64

struct ring {
  _Alignas(LINE) _Atomic uint64_t tail; /* producer position: records [head, tail) are readable */
  _Alignas(LINE) _Atomic uint64_t head; /* consumer position: slots before head are free */
  _Alignas(LINE) _Atomic int64_t start_ns;
  _Atomic int64_t end_ns;
  _Atomic uint64_t checksum;
  _Alignas(LINE) unsigned char data[SLOTS][RECORD];
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pin(int cpu) {
  const char *p = getenv("BENCH_PIN");
  if (p == NULL || strcmp(p, "1") != 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % (int)sysconf(_SC_NPROCESSORS_ONLN), &set);
  sched_setaffinity(0, sizeof set, &set);
}

static struct ring *map_ring(void) {
  void *m = mmap(NULL, sizeof(struct ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) { perror("mmap"); exit(1); }
  memset(m, 0, sizeof(struct ring));
  return m;
}

/* Producer: writes n records (seq in the first 8 bytes), publishing every BATCH. */
static void produce(struct ring *r, uint64_t n) {
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
  uint64_t end = tail + n, published = tail;
  unsigned char rec[RECORD];
  memset(rec, 7, sizeof rec);
  while (tail < end) {
    if (tail - head >= SLOTS) { /* full: refresh the (possibly stale) head */
      if (published != tail) { atomic_store_explicit(&r->tail, tail, memory_order_release); published = tail; }
      head = atomic_load_explicit(&r->head, memory_order_acquire);
      continue;
    }
    memcpy(&rec[0], &tail, 8);
    memcpy(r->data[tail & (SLOTS - 1)], rec, RECORD);
    tail++;
    if (tail - published >= BATCH) { atomic_store_explicit(&r->tail, tail, memory_order_release); published = tail; } /* publish */
  }
  atomic_store_explicit(&r->tail, tail, memory_order_release); /* publish the rest */
}

/* Consumer: reads n records, checks their sequence numbers, frees space every BATCH. */
static uint64_t consume(struct ring *r, uint64_t n) {
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  uint64_t end = head + n, sum = 0, freed = head, tail = head;
  while (head < end) {
    if (head == tail) {
      if (freed != head) { atomic_store_explicit(&r->head, head, memory_order_release); freed = head; }
      tail = atomic_load_explicit(&r->tail, memory_order_acquire);
      continue;
    }
    uint64_t seq;
    memcpy(&seq, r->data[head & (SLOTS - 1)], 8);
    if (seq != head) { fprintf(stderr, "ring: record %llu holds %llu\n", (unsigned long long)head, (unsigned long long)seq); exit(3); }
    sum += seq;
    head++;
    if (head - freed >= BATCH) { atomic_store_explicit(&r->head, head, memory_order_release); freed = head; }
  }
  atomic_store_explicit(&r->head, head, memory_order_release);
  return sum;
}

static void tput(uint64_t n, int runs, uint64_t warmup) {
  for (int run = -1; run < runs; run++) {
    uint64_t count = run < 0 ? warmup : n;
    struct ring *r = map_ring();
    pid_t child = fork();
    if (child < 0) { perror("fork"); exit(1); }
    if (child == 0) {
      pin(1);
      uint64_t sum = consume(r, count);
      atomic_store(&r->end_ns, now_ns());
      atomic_store(&r->checksum, sum);
      _exit(0);
    }
    pin(0);
    atomic_store(&r->start_ns, now_ns());
    produce(r, count);
    int status;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "ring: consumer failed\n"); exit(2); }
    double seconds = (double)(atomic_load(&r->end_ns) - atomic_load(&r->start_ns)) / 1e9;
    if (run >= 0) printf("{\"seconds\":%.9f,\"messages\":%llu,\"bytes\":%llu}\n", seconds, (unsigned long long)count, (unsigned long long)count * RECORD);
    fflush(stdout);
    munmap(r, sizeof(struct ring));
  }
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(const double *s, uint64_t n, double q) {
  uint64_t rank = (uint64_t)(q * (double)n + 0.999999999);
  if (rank > 0) rank--;
  if (rank >= n) rank = n - 1;
  return s[rank];
}

/* Ping-pong over two rings, one record each way, both sides spinning. */
static void rtt(uint64_t n, int runs, uint64_t warmup) {
  for (int run = -1; run < runs; run++) {
    uint64_t count = run < 0 ? warmup : n;
    struct ring *ping = map_ring(), *pong = map_ring();
    pid_t child = fork();
    if (child < 0) { perror("fork"); exit(1); }
    if (child == 0) {
      pin(1);
      for (uint64_t i = 0; i < count; i++) { consume(ping, 1); produce(pong, 1); }
      _exit(0);
    }
    pin(0);
    double *samples = malloc(count * sizeof(double));
    for (uint64_t i = 0; i < count; i++) {
      int64_t t0 = now_ns();
      produce(ping, 1);
      consume(pong, 1);
      samples[i] = (double)(now_ns() - t0) / 1000.0;
    }
    int status;
    waitpid(child, &status, 0);
    qsort(samples, count, sizeof(double), cmp);
    if (run >= 0) printf("{\"p50\":%.4f,\"p99\":%.4f,\"p999\":%.4f,\"messages\":%llu}\n", pct(samples, count, 0.5), pct(samples, count, 0.99), pct(samples, count, 0.999), (unsigned long long)count);
    fflush(stdout);
    free(samples);
    munmap(ping, sizeof(struct ring));
    munmap(pong, sizeof(struct ring));
  }
}

int main(int argc, char **argv) {
  if (argc != 5) { fprintf(stderr, "usage: ring tput|rtt <count> <runs> <warmup>\n"); return 64; }
  uint64_t n = strtoull(argv[2], NULL, 10), warmup = strtoull(argv[4], NULL, 10);
  int runs = atoi(argv[3]);
  if (n == 0 || runs < 1) { fprintf(stderr, "ring: count and runs must be positive\n"); return 64; }
  if (strcmp(argv[1], "tput") == 0) tput(n, runs, warmup == 0 ? 1 : warmup);
  else if (strcmp(argv[1], "rtt") == 0) rtt(n, runs, warmup == 0 ? 1 : warmup);
  else { fprintf(stderr, "ring: unknown mode %s\n", argv[1]); return 64; }
  return 0;
}
