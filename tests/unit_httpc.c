/*
 * unit_httpc.c: the HTTP client's verdicts, its protocol restriction, its
 * answer limit and that it follows no redirect, against a one-answer
 * server on loopback forked here.
 */
#include "config.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpc.h"
#include "tap.h"

struct verdict_case {
	long status;
	enum agora_http_verdict want;
};

static const struct verdict_case verdicts[] = {
	{ 200, AGORA_HTTP_DONE },
	{ 201, AGORA_HTTP_DONE },
	{ -1, AGORA_HTTP_RETRY },
	{ 100, AGORA_HTTP_RETRY },
	{ 302, AGORA_HTTP_RETRY },
	{ 400, AGORA_HTTP_FINAL },
	{ 401, AGORA_HTTP_RETRY },
	{ 402, AGORA_HTTP_FINAL },
	{ 403, AGORA_HTTP_RETRY },
	{ 404, AGORA_HTTP_RETRY },
	{ 408, AGORA_HTTP_RETRY },
	{ 409, AGORA_HTTP_RETRY },
	{ 410, AGORA_HTTP_FINAL },
	{ 422, AGORA_HTTP_FINAL },
	{ 429, AGORA_HTTP_RETRY },
	{ 500, AGORA_HTTP_RETRY },
	{ 503, AGORA_HTTP_RETRY },
};

#define BODY_LEN 1000

/* A server on a loopback port that gives one answer and exits. */
static pid_t
serve_once(const char *head, int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	char req[4096], body[BODY_LEN];
	pid_t pid;
	int s, c;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(s, 1) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &alen) != 0)
		return -1;
	*port = ntohs(a.sin_port);
	/* The child must not write the TAP lines buffered so far again
	 * (valgrind flushes stdio even at _exit). */
	fflush(NULL);
	if ((pid = fork()) != 0) {
		close(s);
		return pid;
	}
	/* Never outlive a parent that crashed: no test waits this long. */
	alarm(60);
	memset(body, 'x', sizeof(body));
	if ((c = accept(s, NULL, NULL)) >= 0 && read(c, req, sizeof(req)) > 0 &&
	    write(c, head, strlen(head)) > 0 &&
	    write(c, body, sizeof(body)) == (ssize_t)sizeof(body))
		close(c);
	_exit(0);
}

static long
call_once(const char *head, size_t max, int discard, struct agora_http *h)
{
	char url[64];
	pid_t pid;
	int port;

	memset(h, 0, sizeof(*h));
	if ((pid = serve_once(head, &port)) < 0)
		return -2;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
	h->method = "GET";
	h->url = url;
	h->timeout_ms = 30000; /* valgrind on a loaded machine is slow */
	h->answer_max = max;
	h->discard = discard;
	agora_http_call(NULL, h);
	h->url = NULL;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return h->status;
}

static void
verdict_tests(void)
{
	size_t i;

	for (i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++)
		tap_ok(agora_http_judge(verdicts[i].status) == verdicts[i].want,
		    "status %ld: verdict %d", verdicts[i].status,
		    (int)verdicts[i].want);
}

/* A file that exists, asked for by file://: refused for its protocol. */
static void
file_tests(void)
{
	char path[] = "/tmp/agora-unit-httpc-XXXXXX", url[64];
	struct agora_http h;
	int fd;

	if ((fd = mkstemp(path)) < 0 || write(fd, "secret\n", 7) != 7) {
		tap_ok(0, "mkstemp");
		return;
	}
	close(fd);
	snprintf(url, sizeof(url), "file://%s", path);
	memset(&h, 0, sizeof(h));
	h.method = "GET";
	h.url = url;
	h.timeout_ms = 1000;
	h.answer_max = 100;
	tap_ok(agora_http_call(NULL, &h) == -1 && h.answer == NULL &&
	        strcmp(h.error,
	            curl_easy_strerror(CURLE_UNSUPPORTED_PROTOCOL)) == 0,
	    "a file:// URL of a readable file is refused: %s", h.error);
	agora_http_done(&h);
	unlink(path);
}

static void
call_tests(void)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n"
	                         "Connection: close\r\n\r\n";
	static const char moved[] =
	    "HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\n"
	    "Content-Length: 1000\r\nConnection: close\r\n\r\n";
	struct agora_http h;
	long st;

	st = call_once(ok, 2 * BODY_LEN, 0, &h);
	tap_ok(st == 200 && h.answer_len == BODY_LEN && h.answer != NULL &&
	        h.answer[BODY_LEN] == '\0',
	    "an answer within answer_max is kept whole (%ld, %zu bytes)", st,
	    h.answer_len);
	agora_http_done(&h);
	st = call_once(ok, BODY_LEN / 2, 0, &h);
	tap_ok(
	    st == -1 && h.overflow && strcmp(h.error, "answer too large") == 0,
	    "a longer one fails the call: %s", h.error);
	agora_http_done(&h);
	st = call_once(ok, 0, 0, &h);
	tap_ok(
	    st == -1 && h.overflow, "answer_max 0: any answer fails the call");
	agora_http_done(&h);
	st = call_once(ok, 0, 1, &h);
	tap_ok(st == 200 && h.answer == NULL,
	    "discard: the answer is read and dropped (%ld)", st);
	agora_http_done(&h);
	st = call_once(moved, BODY_LEN, 0, &h);
	tap_ok(st == 302, "a redirect is not followed (%ld)", st);
	agora_http_done(&h);
	file_tests();
}

int
main(void)
{
	verdict_tests();
	call_tests();
	return tap_done();
}
