/* UUID version 7 (RFC 9562): 48-bit unix milliseconds, then random bits. */
#include "base/uuid.h"
#include "base/util.h"
#include "base/io.h"
#include "base/time.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

static void fill_random(void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t n = getrandom(p + done, len - done, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		done += (size_t)n;
	}
	if (done == len)
		return;

	/* getrandom(2) is missing (old kernel, seccomp): /dev/urandom, then, as a last
	 * resort that still keeps identifiers distinct, a mix of time, pid and a counter. */
	int fd = TEMP_FAILURE_RETRY(open("/dev/urandom", O_RDONLY | O_CLOEXEC | O_NOCTTY));
	if (fd >= 0) {
		ssize_t n = ac_read_all(fd, p + done, len - done);
		close(fd);
		if (n == (ssize_t)(len - done))
			return;
	}
	static uint64_t counter;
	uint64_t x = (uint64_t)ac_time_now_ms() ^ ((uint64_t)getpid() << 40) ^
		     __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15ULL;
	for (; done < len; done++) {
		x += 0x9e3779b97f4a7c15ULL;
		uint64_t z = x;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		p[done] ^= (unsigned char)(z ^ (z >> 31));
	}
}

/* RFC 9562 6.2 method 1: a 12-bit counter in rand_a, reseeded each new millisecond, keeps
 * identifiers from one process strictly increasing even within a millisecond or when the
 * clock steps back. */
static pthread_mutex_t seq_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static unsigned seq;

void ac_uuid_v7(char out[37])
{
	unsigned char b[16];
	fill_random(b, sizeof(b));
	uint64_t now = (uint64_t)ac_time_now_ms() & 0xffffffffffffULL;

	pthread_mutex_lock(&seq_lock);
	if (now > last_ms) {
		last_ms = now;
		/* Start in the lower half so many identifiers fit in one millisecond. */
		seq = ((unsigned)b[6] << 8 | b[7]) & 0x7ff;
	} else if (++seq > 0xfff) {
		last_ms++;
		seq = ((unsigned)b[6] << 8 | b[7]) & 0x7ff;
	}
	uint64_t ts = last_ms;
	unsigned s = seq;
	pthread_mutex_unlock(&seq_lock);

	for (int i = 0; i < 6; i++)
		b[i] = (unsigned char)(ts >> (40 - 8 * i));
	b[6] = (unsigned char)(0x70 | (s >> 8));
	b[7] = (unsigned char)(s & 0xff);
	b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));

	static const char hex[] = "0123456789abcdef";
	char *o = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[b[i] >> 4];
		*o++ = hex[b[i] & 0xf];
	}
	*o = '\0';
}

bool ac_uuid_valid(const char *s)
{
	if (s == NULL)
		return false;
	for (int i = 0; i < 36; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return s[36] == '\0';
}
