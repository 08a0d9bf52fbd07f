/* Process-creation load for the benchmarks.
 *   spawner loop N P          fork+exec+wait /bin/true N times over P parallel workers; prints wall seconds
 *   spawner rate R SECS       start /bin/true R times a second for SECS (paced on the clock); prints count
 *   spawner storm SECS P ARG  P workers fork+exec+wait "/bin/true ARG" flat out for SECS; prints count
 *   spawner forks N P         fork+_exit+wait N times (no exec) over P parallel workers; prints wall seconds
 *   spawner time N CMD ARG..  run CMD N times, stdout to /dev/null; prints the median ms from fork to
 *                             reaped (a shell loop timing with date adds two forks of its own) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int just_fork(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid < 0) { perror("fork"); return -1; }
	int st;
	while (waitpid(pid, &st, 0) < 0) {}
	return 0;
}

static int run_true(const char *arg)
{
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/true", "/bin/true", arg, (char *)NULL);
		_exit(127);
	}
	if (pid < 0) { perror("fork"); return -1; }
	int st;
	while (waitpid(pid, &st, 0) < 0) {}
	return 0;
}

/* P workers; each runs body(i) and adds its count to a shared total. */
static long parallel(int p, long (*body)(int, void *), void *ctx)
{
	long *counts = mmap(NULL, sizeof(long) * p, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	for (int i = 0; i < p; i++) {
		if (fork() == 0) { counts[i] = body(i, ctx); _exit(0); }
	}
	long total = 0;
	for (int i = 0; i < p; i++) wait(NULL);
	for (int i = 0; i < p; i++) total += counts[i];
	return total;
}

struct loop_ctx { long n; int p; int exec; };
static long loop_body(int i, void *c)
{
	struct loop_ctx *l = c;
	long n = l->n / l->p + (i < l->n % l->p);
	for (long k = 0; k < n; k++) if ((l->exec ? run_true(NULL) : just_fork()) < 0) return k;
	return n;
}

struct storm_ctx { double end; const char *arg; };
static long storm_body(int i, void *c)
{
	struct storm_ctx *s = c;
	long k = 0;
	(void)i;
	while (now() < s->end) { if (run_true(s->arg) < 0) break; k++; }
	return k;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "time")) {
		int n = atoi(argv[2]);
		double *ms = calloc(n > 0 ? n : 1, sizeof(double));
		for (int i = 0; i < n; i++) {
			double t0 = now();
			pid_t pid = fork();
			if (pid == 0) {
				int fd = open("/dev/null", O_WRONLY);
				dup2(fd, 1);
				execv(argv[3], argv + 3);
				_exit(127);
			}
			int st;
			while (waitpid(pid, &st, 0) < 0) {}
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "spawner: %s failed\n", argv[3]); return 1; }
			ms[i] = (now() - t0) * 1e3;
		}
		qsort(ms, n, sizeof(double), cmp_double);
		printf("%.1f\n", n > 0 ? ms[(n - 1) / 2] : 0);
		return 0;
	}
	if (argc == 4 && (!strcmp(argv[1], "loop") || !strcmp(argv[1], "forks"))) {
		struct loop_ctx c = { atol(argv[2]), atoi(argv[3]), !strcmp(argv[1], "loop") };
		double t0 = now();
		parallel(c.p, loop_body, &c);
		printf("%.6f\n", now() - t0);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "rate")) {
		double rate = atof(argv[2]), secs = atof(argv[3]);
		struct sigaction sa = { .sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT };
		sigaction(SIGCHLD, &sa, NULL);   /* children reap themselves */
		double t0 = now();
		long n = 0, total = (long)(rate * secs);
		while (n < total) {
			double due = t0 + n / rate, d = due - now();
			if (d > 0) {
				struct timespec ts = { (time_t)d, (long)((d - (time_t)d) * 1e9) };
				nanosleep(&ts, NULL);
			}
			pid_t pid = fork();
			if (pid == 0) { execl("/bin/true", "/bin/true", (char *)NULL); _exit(127); }
			if (pid > 0) n++;
		}
		printf("%ld\n", n);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "storm")) {
		struct storm_ctx c = { now() + atof(argv[2]), argv[4] };
		printf("%ld\n", parallel(atoi(argv[3]), storm_body, &c));
		return 0;
	}
	fprintf(stderr, "usage: spawner loop N P | rate R SECS | storm SECS P ARG | forks N P | time N CMD ARG...\n");
	return 2;
}
