/*
 * storage.c: where file bytes live, behind one interface used by uploads
 * and invoices.
 *
 * local: a directory (storage_dir).  A file is written under a temporary
 *   name, synced and renamed into place, so that a reader never sees half
 *   of it and a crash leaves no torn file under a key.
 * s3: a bucket of an S3-compatible service, path-style URLs
 *   (<s3_endpoint>/<bucket>/<key>), signed with libcurl's SigV4.  curl
 *   7.88 neither sends nor hashes the payload for x-amz-content-sha256,
 *   so the header is added here with the body's SHA-256, which curl then
 *   signs.
 *
 * Keys are made by agora itself (lower-case letters, digits, '/', '.',
 * '_' and '-', never ".."), so they need no escaping in a path or a URL.
 * No header is removed with an empty "Name:" entry: curl 7.88 signs such
 * an entry as an empty header it then does not send, and the signature no
 * longer matches (tests/worker_invoices.py checks it against botocore).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "agora.h"

#define PATH_MAX_LEN 1024
#define URL_MAX_LEN 2048
#define S3_ERROR_MAX 512
#define EMPTY_SHA256                                                           \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

int
agora_storage_key_ok(const char *key)
{
	const char *p;

	if (key == NULL || *key == '\0' || strlen(key) > 200 ||
	    strstr(key, "..") != NULL || *key == '/' || *key == '.')
		return 0;
	for (p = key; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		        *p == '/' || *p == '.' || *p == '_' || *p == '-'))
			return 0;
	return 1;
}

void
agora_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, data, len);
	sodium_bin2hex(out, 65, h, sizeof(h));
}

/* --- local --------------------------------------------------------------- */

/* Make the directories above path, as mkdir -p would. */
static int
mkdirs(char *path)
{
	char *s;

	for (s = strchr(path + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(path, 0750) != 0 && errno != EEXIST) {
			*s = '/';
			return -1;
		}
		*s = '/';
	}
	return 0;
}

static int
local_put(const struct agora_config *cfg, const char *key, const void *data,
    size_t len, char *err, size_t errlen)
{
	char path[PATH_MAX_LEN], tmp[PATH_MAX_LEN + 32];
	int fd = -1, rc = -1;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", cfg->storage_dir,
	        key) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%ld.%08x", path,
	        (long)getpid(), randombytes_random()) >= sizeof(tmp)) {
		snprintf(err, errlen, "storage path too long");
		return -1;
	}
	if (mkdirs(tmp) != 0 ||
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) <
	        0 ||
	    agora_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = close(fd);
	fd = -1;
	if (rc != 0 || rename(tmp, path) != 0) {
		rc = -1;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

static int
local_get(const struct agora_config *cfg, const char *key, size_t max,
    char **data, size_t *len, char *err, size_t errlen)
{
	char path[PATH_MAX_LEN];
	struct stat st;
	char *buf = NULL;
	ssize_t n;
	size_t got = 0;
	int fd = -1, rc = -1;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", cfg->storage_dir,
	        key) >= sizeof(path)) {
		snprintf(err, errlen, "storage path too long");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = errno == ENOENT ? 1 : -1;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) != 0 || (size_t)st.st_size > max ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		snprintf(err, errlen, "%s: cannot read", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "%s: short read", path);
			goto out;
		}
		got += (size_t)n;
	}
	*data = buf;
	*len = got;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

/* --- s3 ------------------------------------------------------------------ */

struct s3_io {
	const char *src; /* PUT: the body */
	size_t src_len, src_off;
	char *dst; /* GET: what came back, up to max bytes */
	size_t dst_len, max;
	int overflow;
};

static size_t
s3_read(char *p, size_t size, size_t n, void *arg)
{
	struct s3_io *io = arg;
	size_t k = size * n;

	if (k > io->src_len - io->src_off)
		k = io->src_len - io->src_off;
	memcpy(p, io->src + io->src_off, k);
	io->src_off += k;
	return k;
}

static size_t
s3_write(char *p, size_t size, size_t n, void *arg)
{
	struct s3_io *io = arg;
	size_t k = size * n;
	char *grown;

	if (k > io->max - io->dst_len) {
		io->overflow = 1;
		return 0;
	}
	if ((grown = realloc(io->dst, io->dst_len + k + 1)) == NULL)
		return 0;
	io->dst = grown;
	memcpy(io->dst + io->dst_len, p, k);
	io->dst_len += k;
	io->dst[io->dst_len] = '\0';
	return k;
}

static int
s3_ready(void)
{
	static int done;

	if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
		done = 1;
	return done ? 0 : -1;
}

/*
 * One signed request: method on key (NULL: the bucket itself).  Returns
 * the HTTP status, or -1 when no answer came (err says why).
 */
static long
s3_call(const struct agora_config *cfg, const char *method, const char *key,
    const char *ctype, struct s3_io *io, long timeout_ms, char *err,
    size_t errlen)
{
	char url[URL_MAX_LEN], sigv4[128], hdr[128], hash[65];
	struct curl_slist *h = NULL, *t;
	CURL *c = NULL;
	CURLcode cc = CURLE_OUT_OF_MEMORY;
	long status = -1;
	size_t n;

	n = strlen(cfg->s3_endpoint);
	while (n > 0 && cfg->s3_endpoint[n - 1] == '/')
		n--;
	if ((size_t)snprintf(url, sizeof(url), "%.*s/%s%s%s", (int)n,
	        cfg->s3_endpoint, cfg->s3_bucket, key != NULL ? "/" : "",
	        key != NULL ? key : "") >= sizeof(url)) {
		snprintf(err, errlen, "s3 URL too long");
		return -1;
	}
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:s3", cfg->s3_region);
	if (io->src != NULL)
		agora_sha256_hex(io->src, io->src_len, hash);
	else
		snprintf(hash, sizeof(hash), "%s", EMPTY_SHA256);
	snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", hash);
	if (s3_ready() != 0 || (c = curl_easy_init()) == NULL ||
	    (h = curl_slist_append(NULL, hdr)) == NULL)
		goto out;
	if (ctype != NULL) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %.100s", ctype);
		if ((t = curl_slist_append(h, hdr)) == NULL)
			goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(c, CURLOPT_USERNAME, cfg->s3_access_key);
	curl_easy_setopt(c, CURLOPT_PASSWORD, cfg->s3_secret_key);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s3_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, io);
	if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, s3_read);
		curl_easy_setopt(c, CURLOPT_READDATA, io);
		curl_easy_setopt(
		    c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)io->src_len);
	} else if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	cc = curl_easy_perform(c);
	if (cc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	else
		snprintf(err, errlen, "s3 %s %s: %s", method, url,
		    io->overflow ? "answer too large" : curl_easy_strerror(cc));
out:
	if (cc == CURLE_OUT_OF_MEMORY && status < 0)
		snprintf(err, errlen, "s3: out of memory");
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

/* An answer other than the one expected, with S3's own error code. */
static int
s3_unexpected(
    const char *method, long status, struct s3_io *io, char *err, size_t errlen)
{
	const char *code = io->dst != NULL ? strstr(io->dst, "<Code>") : NULL;
	const char *end;
	int n = 0;

	if (code != NULL) {
		code += strlen("<Code>");
		end = strchr(code, '<');
		n = end != NULL && end - code <= 64 ? (int)(end - code) : 0;
	}
	snprintf(err, errlen, "s3 %s: HTTP %ld%s%.*s", method, status,
	    n > 0 ? " " : "", n, n > 0 ? code : "");
	return -1;
}

static int
s3_put(const struct agora_config *cfg, const char *key, const void *data,
    size_t len, const char *ctype, char *err, size_t errlen)
{
	struct s3_io io = { data, len, 0, NULL, 0, S3_ERROR_MAX, 0 };
	long status;
	int rc = -1;

	status = s3_call(
	    cfg, "PUT", key, ctype, &io, cfg->storage_timeout_ms, err, errlen);
	if (status >= 200 && status < 300)
		rc = 0;
	else if (status >= 0)
		s3_unexpected("PUT", status, &io, err, errlen);
	free(io.dst);
	return rc;
}

static int
s3_get(const struct agora_config *cfg, const char *key, size_t max, char **data,
    size_t *len, char *err, size_t errlen)
{
	struct s3_io io = { NULL, 0, 0, NULL, 0, max, 0 };
	long status;
	int rc = -1;

	status = s3_call(
	    cfg, "GET", key, NULL, &io, cfg->storage_timeout_ms, err, errlen);
	if (status == 200) {
		if (io.dst == NULL && (io.dst = calloc(1, 1)) == NULL)
			goto out;
		*data = io.dst;
		*len = io.dst_len;
		io.dst = NULL;
		rc = 0;
	} else if (status == 404) {
		snprintf(err, errlen, "s3 GET %s: not found", key);
		rc = 1;
	} else if (status >= 0)
		s3_unexpected("GET", status, &io, err, errlen);
out:
	free(io.dst);
	return rc;
}

/* --- the interface ---------------------------------------------------------
 */

int
agora_storage_put(const struct agora_config *cfg, const char *backend,
    const char *key, const void *data, size_t len, const char *ctype, char *err,
    size_t errlen)
{
	if (!agora_storage_key_ok(key)) {
		snprintf(err, errlen, "bad storage key");
		return -1;
	}
	if (strcmp(backend, "s3") == 0)
		return s3_put(cfg, key, data, len, ctype, err, errlen);
	return local_put(cfg, key, data, len, err, errlen);
}

int
agora_storage_get(const struct agora_config *cfg, const char *backend,
    const char *key, size_t max, char **data, size_t *len, char *err,
    size_t errlen)
{
	*data = NULL;
	*len = 0;
	if (!agora_storage_key_ok(key)) {
		snprintf(err, errlen, "bad storage key");
		return -1;
	}
	if (strcmp(backend, "s3") == 0)
		return s3_get(cfg, key, max, data, len, err, errlen);
	return local_get(cfg, key, max, data, len, err, errlen);
}

const char *
agora_storage_check(const struct agora_config *cfg)
{
	struct s3_io io = { NULL, 0, 0, NULL, 0, S3_ERROR_MAX, 0 };
	char err[256];
	long status;

	if (strcmp(cfg->storage, "s3") != 0)
		return access(cfg->storage_dir, W_OK | X_OK) == 0
		    ? "ok"
		    : "unavailable";
	/* The bucket answers HEAD when it exists and the key is good. */
	status = s3_call(cfg, "HEAD", NULL, NULL, &io, 1000, err, sizeof(err));
	free(io.dst);
	return status == 200 ? "ok" : "unavailable";
}
