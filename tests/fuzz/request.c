/*
 * request.c: libFuzzer driver for the request path: CGI variables and a
 * body made from the input drive agora_handle() over a small route table
 * (JSON bodies with validation, raw bodies, path parameters, queries,
 * pages, tokens), with no web server and no database.  The input is
 * "NAME=value" lines, an empty line, then the body.  The answer must be
 * one well-formed CGI response: a known status, header lines without a
 * stray CR or LF, and a Content-Length that is the body's length.
 */
#include "config.h"

#include <stdio.h>

#include <sodium.h>

#include "fuzz.h"

#define ENV_MAX 32

static enum agora_err
get_thing(struct agora_req *r)
{
	struct json_object *o;
	const char *q, *pos = NULL, *k, *v, *after;
	long long limit;
	enum agora_err rc;
	int n = 0;

	if ((rc = agora_query_get(r, "q", &q)) != AGORA_OK ||
	    (rc = agora_page_params(r, &limit, &after)) != AGORA_OK)
		return rc;
	do
		if ((rc = agora_query_next(r, &pos, &k, &v)) != AGORA_OK)
			return rc;
	while (k != NULL && ++n < 64);
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(r->params[0]));
	json_object_object_add(
	    o, "q", q != NULL ? json_object_new_string(q) : NULL);
	agora_resp_header(r, "X-Q", q != NULL ? q : "-");
	return agora_resp_json(r, 200, o);
}

static enum agora_err
post_thing(struct agora_req *r)
{
	static const struct agora_field f[] = {
		{ "name", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 20 },
		{ "n", AGORA_F_INT, 0, -5, 1000 },
		{ "ok", AGORA_F_BOOL, 0, 0, 0 },
		{ "tags", AGORA_F_ARRAY, 0, 0, 5 },
		{ "extra", AGORA_F_OBJECT, 0, 0, 0 },
	};
	struct agora_value v[AGORA_NELEM(f)];
	enum agora_err rc;

	if ((rc = agora_valid_body(r, f, AGORA_NELEM(f), v)) != AGORA_OK)
		return rc;
	agora_resp_header(r, "Location", agora_printf(r, "/x/%s", v[0].s));
	return agora_resp_json(r, 201, json_object_get(r->json));
}

static enum agora_err
post_raw(struct agora_req *r)
{
	char name[256];

	agora_filename_clean(r->body, r->body_len, name, sizeof(name));
	return agora_resp_raw(
	    r, 200, "text/plain", agora_strdup(r, name), strlen(name));
}

static enum agora_err
get_me(struct agora_req *r)
{
	return agora_resp_doc(r, r->user, strlen(r->user), "private");
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/things/{thing_id}", AGORA_BODY_NONE, get_thing,
	    AGORA_ANON },
	{ "POST", "/api/v1/things", AGORA_BODY_JSON, post_thing, AGORA_ANON },
	{ "PUT", "/api/v1/things/{thing_id}/x/{x_id}", AGORA_BODY_JSON_OPTIONAL,
	    post_thing, AGORA_ADMIN },
	{ "POST", "/api/v1/raw", AGORA_BODY_RAW, post_raw, AGORA_USER,
	    AGORA_RL_NONE },
	{ "GET", "/api/v1/me", AGORA_BODY_NONE, get_me, AGORA_USER },
};

static const struct agora_program prog = { "fuzz", routes, AGORA_NELEM(routes),
	NULL, 0, NULL };

static struct agora_ctx ctx;
static struct agora_arena *arena;

struct sink {
	const char *in;
	size_t in_len, in_off;
	char *out;
	size_t out_len, out_cap;
	int writes;
};

static long
sink_read(void *arg, char *buf, size_t n)
{
	struct sink *s = arg;

	if (n > s->in_len - s->in_off)
		n = s->in_len - s->in_off;
	memcpy(buf, s->in + s->in_off, n);
	s->in_off += n;
	return (long)n;
}

static int
sink_write(void *arg, const char *buf, size_t n)
{
	struct sink *s = arg;

	s->writes++;
	s->out = realloc(s->out, s->out_len + n + 1);
	if (s->out == NULL)
		abort();
	memcpy(s->out + s->out_len, buf, n);
	s->out_len += n;
	s->out[s->out_len] = '\0';
	return 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	agora_config_defaults(&ctx.cfg);
	ctx.cfg.log_requests = 0;
	ctx.cfg.max_body_bytes = 2048;
	ctx.cfg.file_max_bytes = 1024;
	free(ctx.cfg.jwt_secret_file);
	ctx.cfg.jwt_secret_file = fuzz_file(FUZZ_HS256_SECRET);
	agora_auth_init(&ctx);
	if (ctx.auth == NULL)
		abort();
	ctx.db = fuzz_db();
	arena = agora_arena_new((size_t)ctx.cfg.request_memory_bytes);
	return arena != NULL ? 0 : -1;
}

/* The input's lines up to an empty one as envp; *body after it. */
static size_t
make_env(char *s, char **env, const char **body)
{
	size_t n = 0;
	char *nl;

	*body = "";
	while (*s != '\0' && *s != '\n' && n < ENV_MAX) {
		env[n++] = s;
		if ((nl = strchr(s, '\n')) == NULL)
			return n;
		*nl = '\0';
		s = nl + 1;
	}
	if (*s == '\n')
		*body = s + 1;
	return n;
}

/* The one response written: a known status, clean lines, its length. */
static void
check_answer(const struct sink *s, const char *method)
{
	const char *end, *line, *eol, *cl = NULL;
	int status;

	if (s->writes != 1 || strncmp(s->out, "Status: ", 8) != 0)
		abort();
	status = (int)strtol(s->out + 8, NULL, 10);
	if (status < 200 || status > 599 || status == 500 ||
	    strcmp(agora_status_text(status), "Unknown") == 0)
		abort();
	if ((end = strstr(s->out, "\r\n\r\n")) == NULL)
		abort();
	for (line = s->out; line < end; line = eol + 2) {
		eol = strstr(line, "\r\n");
		if (memchr(line, '\n', (size_t)(eol - line)) != NULL ||
		    memchr(line, '\r', (size_t)(eol - line)) != NULL ||
		    memchr(line, ':', (size_t)(eol - line)) == NULL)
			abort();
		if (strncmp(line, "Content-Length: ", 16) == 0)
			cl = line + 16;
	}
	end += 4;
	if (strcmp(method, "HEAD") != 0 && status != 204 && status != 304 &&
	    (cl == NULL ||
	        strtoul(cl, NULL, 10) != s->out_len - (size_t)(end - s->out)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size), *env[ENV_MAX + 1];
	struct agora_io io;
	struct sink s;
	const char *method;
	size_t n, i;

	memset(&s, 0, sizeof(s));
	n = make_env(text, env, &s.in);
	env[n] = NULL;
	s.in_len = strlen(s.in);
	io.read = sink_read;
	io.write = sink_write;
	io.arg = &s;
	agora_handle(&ctx, &prog, arena, env, &io);
	method = "GET";
	for (i = n; i-- > 0;)
		if (strncmp(env[i], "REQUEST_METHOD=", 15) == 0)
			method = env[i] + 15; /* the first one counts */
	check_answer(&s, method);
	free(s.out);
	free(text);
	return 0;
}
