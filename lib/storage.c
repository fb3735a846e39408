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

#include <sodium.h>

#include "agora.h"
#include "httpc.h"

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

/*
 * One signed request: h->method on key (NULL: the bucket itself), with
 * h's body and answer limit.  Returns the HTTP status, or -1 when no
 * answer came (err says why).
 */
static long
s3_call(const struct agora_config *cfg, const char *key, const char *ctype,
    struct agora_http *h, char *err, size_t errlen)
{
	char url[URL_MAX_LEN], sigv4[128], hdr[128], hash[65];
	struct curl_slist *hl = NULL, *t;
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
	if (h->body != NULL)
		agora_sha256_hex(h->body, h->body_len, hash);
	else
		snprintf(hash, sizeof(hash), "%s", EMPTY_SHA256);
	snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", hash);
	if ((hl = curl_slist_append(NULL, hdr)) == NULL)
		goto oom;
	if (ctype != NULL) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %.100s", ctype);
		if ((t = curl_slist_append(hl, hdr)) == NULL)
			goto oom;
	}
	h->url = url;
	h->headers = hl;
	h->sigv4 = sigv4;
	h->user = cfg->s3_access_key;
	h->password = cfg->s3_secret_key;
	if (agora_http_call(NULL, h) < 0)
		snprintf(err, errlen, "s3 %s %s: %s", h->method, url, h->error);
	h->url = NULL; /* this frame's, and the list freed below */
	h->headers = NULL;
	curl_slist_free_all(hl);
	return h->status;
oom:
	snprintf(err, errlen, "s3: out of memory");
	curl_slist_free_all(hl);
	return -1;
}

/* An answer other than the one expected, with S3's own error code. */
static int
s3_unexpected(const struct agora_http *h, char *err, size_t errlen)
{
	const char *code =
	    h->answer != NULL ? strstr(h->answer, "<Code>") : NULL;
	const char *end;
	int n = 0;

	if (code != NULL) {
		code += strlen("<Code>");
		end = strchr(code, '<');
		n = end != NULL && end - code <= 64 ? (int)(end - code) : 0;
	}
	snprintf(err, errlen, "s3 %s: HTTP %ld%s%.*s", h->method, h->status,
	    n > 0 ? " " : "", n, n > 0 ? code : "");
	return -1;
}

static int
s3_put(const struct agora_config *cfg, const char *key, const void *data,
    size_t len, const char *ctype, char *err, size_t errlen)
{
	struct agora_http h = { .method = "PUT",
		.body = data,
		.body_len = len,
		.timeout_ms = cfg->storage_timeout_ms,
		.answer_max = S3_ERROR_MAX };
	long status;
	int rc = -1;

	status = s3_call(cfg, key, ctype, &h, err, errlen);
	if (status >= 200 && status < 300)
		rc = 0;
	else if (status >= 0)
		s3_unexpected(&h, err, errlen);
	agora_http_done(&h);
	return rc;
}

static int
s3_get(const struct agora_config *cfg, const char *key, size_t max, char **data,
    size_t *len, char *err, size_t errlen)
{
	struct agora_http h = { .method = "GET",
		.timeout_ms = cfg->storage_timeout_ms,
		.answer_max = max };
	long status;
	int rc = -1;

	status = s3_call(cfg, key, NULL, &h, err, errlen);
	if (status == 200) {
		if (h.answer == NULL && (h.answer = calloc(1, 1)) == NULL)
			goto out;
		*data = h.answer;
		*len = h.answer_len;
		h.answer = NULL;
		rc = 0;
	} else if (status == 404) {
		snprintf(err, errlen, "s3 GET %s: not found", key);
		rc = 1;
	} else if (status >= 0)
		s3_unexpected(&h, err, errlen);
out:
	agora_http_done(&h);
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
	struct agora_http h = {
		.method = "HEAD", .timeout_ms = 1000, .answer_max = S3_ERROR_MAX
	};
	char err[256];
	long status;

	if (strcmp(cfg->storage, "s3") != 0)
		return access(cfg->storage_dir, W_OK | X_OK) == 0
		    ? "ok"
		    : "unavailable";
	/* The bucket answers HEAD when it exists and the key is good. */
	status = s3_call(cfg, NULL, NULL, &h, err, sizeof(err));
	agora_http_done(&h);
	return status == 200 ? "ok" : "unavailable";
}
