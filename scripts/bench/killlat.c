/* Spawns VICTIM N times and times fork → parent seeing SIGKILL. The victim (same file,
 * "victim" mode) appends one byte to MARKER every 100 µs for a second: what it wrote is what
 * ran before the kill. Usage: killlat N VICTIM MARKER | killlat victim MARKER */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "victim")) {
		int fd = open(argv[2], O_CREAT | O_WRONLY | O_APPEND, 0644);
		for (int i = 0; i < 10000; i++) {
			write(fd, "x", 1);
			usleep(100);
		}
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: killlat N VICTIM MARKER\n");
		return 2;
	}
	long n = atol(argv[1]);
	double *lat = calloc(n, sizeof(double));
	long killed = 0;
	for (long i = 0; i < n; i++) {
		double t0 = now();
		pid_t pid = fork();
		if (pid == 0) {
			execl(argv[2], argv[2], "victim", argv[3], (char *)NULL);
			_exit(127);
		}
		int st;
		waitpid(pid, &st, 0);
		double t1 = now();
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
			lat[killed++] = (t1 - t0) * 1e3;
	}
	qsort(lat, killed, sizeof(double), cmp);
	struct stat;
	FILE *m = fopen(argv[3], "r");
	long bytes = 0;
	if (m) { fseek(m, 0, SEEK_END); bytes = ftell(m); fclose(m); }
	printf("%ld %ld %.3f %.3f %ld\n", n, killed, killed ? lat[killed / 2] : 0, killed ? lat[killed * 99 / 100] : 0, bytes);
	return 0;
}
