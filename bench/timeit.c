/* timeit: run a command N times with fork+exec (no shell) and print its wall-time
 * distribution, measured with CLOCK_MONOTONIC around fork .. waitpid.
 *
 * usage: timeit [-n N] [-w WARMUP] [-a 'SHELL CMD'] [-e FILE] [-r] [-v] -- CMD [ARG...]
 *               [::: CMD2 ...]
 *   -n N      timed iterations (default 100)
 *   -w W      untimed warm-up iterations first (default 3)
 *   -a CMD    run CMD with /bin/sh -c after every iteration (warm-up too), untimed: clean-up
 *   -r        also print every sample, one per line ("sample MS"), in order
 *   -v        keep the command's stdout/stderr (default: /dev/null)
 *   -e FILE   append the command's stderr to FILE (instead of /dev/null)
 *   ':::'     separates commands run one after the other inside ONE timed iteration; the
 *             iteration stops at the first command that fails
 * output (one line): n=N fail=F p50=MS p90=MS p99=MS mean=MS min=MS max=MS
 * exit status: 0, or 1 if any iteration failed (the line is still printed). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int devnull = -1;
static int errfd = -1;
static int verbose;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs argv (NULL-terminated) and returns its exit status, or -1. */
static int run_argv(char **argv)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (!verbose) {
			dup2(devnull, STDOUT_FILENO);
			dup2(errfd >= 0 ? errfd : devnull, STDERR_FILENO);
		}
		dup2(devnull, STDIN_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

/* The command list: cmds[i] points into argv, each NULL-terminated in place. */
static char **cmds[64];
static int ncmds;

static int run_all(void)
{
	for (int i = 0; i < ncmds; i++) {
		int rc = run_argv(cmds[i]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static void run_after(const char *after)
{
	if (!after)
		return;
	char *argv[] = {"/bin/sh", "-c", (char *)after, NULL};
	(void)run_argv(argv);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *s, int n, double p)
{
	int rank = (int)(p / 100.0 * n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return s[rank - 1];
}

int main(int argc, char **argv)
{
	int n = 100, warm = 3, raw = 0, opt;
	const char *after = NULL;
	while ((opt = getopt(argc, argv, "+n:w:a:e:rv")) != -1) {
		switch (opt) {
		case 'n':
			n = atoi(optarg);
			break;
		case 'w':
			warm = atoi(optarg);
			break;
		case 'a':
			after = optarg;
			break;
		case 'e':
			errfd = open(optarg, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			if (errfd < 0) {
				perror(optarg);
				return 2;
			}
			break;
		case 'r':
			raw = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			fprintf(
			    stderr,
			    "usage: timeit [-n N] [-w W] [-a CMD] [-e FILE] [-r] [-v] -- CMD...\n");
			return 2;
		}
	}
	if (optind >= argc || n < 1 || warm < 0) {
		fprintf(stderr, "timeit: no command (or bad -n/-w)\n");
		return 2;
	}
	cmds[ncmds++] = &argv[optind];
	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], ":::") == 0) {
			argv[i] = NULL;
			if (i + 1 >= argc || ncmds == 64) {
				fprintf(stderr, "timeit: bad ':::'\n");
				return 2;
			}
			cmds[ncmds++] = &argv[i + 1];
		}
	}
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0) {
		perror("timeit: /dev/null");
		return 2;
	}

	for (int i = 0; i < warm; i++) {
		(void)run_all();
		run_after(after);
	}
	double *s = calloc((size_t)n, sizeof(double));
	if (!s)
		return 2;
	int fails = 0;
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();
		int rc = run_all();
		s[i] = now_ms() - t0;
		if (rc != 0)
			fails++;
		run_after(after);
	}
	if (raw)
		for (int i = 0; i < n; i++)
			printf("sample %.3f\n", s[i]);
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += s[i];
	qsort(s, (size_t)n, sizeof(double), cmp_double);
	printf("n=%d fail=%d p50=%.3f p90=%.3f p99=%.3f mean=%.3f min=%.3f max=%.3f\n", n, fails,
	       pct(s, n, 50), pct(s, n, 90), pct(s, n, 99), sum / n, s[0], s[n - 1]);
	free(s);
	return fails ? 1 : 0;
}
