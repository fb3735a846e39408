/*
 * agora.h: the one header an agora program includes.
 *
 * A program is a route table, its handlers, the SQL statements it prepares
 * and a main() that calls agora_main().  Everything shared lives in
 * libagora: configuration, the FastCGI (or plain CGI) serve loop with a
 * capped per-request arena, request parsing with limits, routing,
 * validation, problem+json errors, PostgreSQL with reconnects and retried
 * transactions, memcached as a cache that can only miss, and logging.
 *
 * Ownership: everything a request allocates comes from its arena, or is
 * registered with it (agora_defer) and released when the request ends.
 * Nothing arena-owned may outlive the request.
 */
#ifndef AGORA_H
#define AGORA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <json-c/json.h>
#include <libpq-fe.h>

/*
 * Every fallible library call returns one of these.  The problem table in
 * problem.c maps each to an HTTP status, a stable code and a title; that
 * table is the only place where errors become HTTP.
 */
enum agora_err {
	AGORA_OK = 0,
	AGORA_E_BAD_REQUEST, /* 400 bad_request */
	AGORA_E_BAD_JSON, /* 400 malformed_json */
	AGORA_E_BAD_TYPE, /* 400 invalid_type, with errors[] */
	AGORA_E_UNAUTHORIZED, /* 401 unauthorized */
	AGORA_E_FORBIDDEN, /* 403 forbidden */
	AGORA_E_NOT_FOUND, /* 404 not_found */
	AGORA_E_METHOD, /* 405 method_not_allowed */
	AGORA_E_CONFLICT, /* 409 conflict */
	AGORA_E_TOO_LARGE, /* 413 payload_too_large */
	AGORA_E_MEDIA_TYPE, /* 415 unsupported_media_type */
	AGORA_E_VALIDATION, /* 422 validation_failed, with errors[] */
	AGORA_E_RATE_LIMITED, /* 429 rate_limited */
	AGORA_E_INTERNAL, /* 500 internal_error */
	AGORA_E_BAD_GATEWAY, /* 502 bad_gateway: a peer answered wrongly */
	AGORA_E_UNAVAILABLE, /* 503 service_unavailable */
	AGORA_E_RETRY, /* internal: serialization failure, retry */
	AGORA_E_CONNLOST, /* internal: database connection lost */
	AGORA_E__MAX
};

/*
 * The secrets of the configuration.  Each may be given in agora.conf or,
 * better, as <key>_file naming a file that holds it, readable by those
 * who need it only.  A program loads the ones its work needs (its
 * struct agora_program says which) and wipes the others: what a process
 * never holds, a bug in it cannot leak.
 */
enum agora_secret {
	AGORA_SECRET_DATABASE_URL,
	AGORA_SECRET_DATABASE_ADMIN_URL,
	AGORA_SECRET_WEBHOOK,
	AGORA_SECRET_GATEWAY_KEY,
	AGORA_SECRET_S3_ACCESS_KEY,
	AGORA_SECRET_S3_SECRET_KEY,
	AGORA_SECRET_SMTP_PASSWORD,
	AGORA_SECRET_SMS_TOKEN,
	AGORA_SECRET_DATABASE_READ_URL,
	AGORA_SECRET__MAX
};
#define AGORA_NEEDS(s) (1u << (s))
#define AGORA_NEEDS_STORAGE                                                    \
	(AGORA_NEEDS(AGORA_SECRET_S3_ACCESS_KEY) |                             \
	    AGORA_NEEDS(AGORA_SECRET_S3_SECRET_KEY))
#define AGORA_NEEDS_ALL ((1u << AGORA_SECRET__MAX) - 1)
/* The client secrets of the sign-in providers: the auth program's alone. */
#define AGORA_NEEDS_PROVIDERS (1u << 31)

/*
 * A sign-in provider: a [provider NAME] section of agora.conf
 * (doc/sign-in.md).  type "oidc" is an OpenID Connect provider found from
 * its issuer; "oauth2" one of the GitHub kind, by its endpoints.
 */
#define AGORA_PROVIDERS_MAX 8
struct agora_provider {
	char *name;
	char *type;
	char *display_name;
	char *issuer;
	char *client_id;
	char *client_secret_file;
	char *
	    client_secret; /* read from the file by the programs that need it */
	char *alg; /* the one algorithm its ID tokens may be signed with */
	char *scopes;
	char *authorization_endpoint;
	char *token_endpoint;
	char *userinfo_endpoint;
	char *emails_endpoint;
};

/* Configuration: read once per process, before the accept loop. */
struct agora_config {
	char *database_url;
	char *database_admin_url;
	char *database_read_url; /* a replica for reads; "" for none */
	long long database_read_max_lag_ms;
	/* <secret>_file: where a secret is read from, instead of agora.conf. */
	char *secret_file[AGORA_SECRET__MAX];
	char *memcached_servers;
	char *storage;
	char *storage_dir;
	char *run_dir;
	char *openapi_file;
	long long max_body_bytes;
	long long max_header_bytes;
	long long request_memory_bytes;
	long long db_retry_after;
	long long db_statement_timeout_ms;
	long long log_requests;
	char *jwt_alg;
	char *jwt_secret_file;
	char *jwt_private_key_file;
	char *jwt_public_key_file;
	char *jwt_issuer;
	long long access_token_ttl;
	long long refresh_token_ttl;
	long long refresh_reuse_grace; /* a rotated token refreshes, seconds */
	long long email_verify_ttl; /* a verification mail's link, seconds */
	long long password_reset_ttl; /* a reset mail's link, seconds */
	long long password_reset_max; /* reset mails per address per hour */
	long long notify_unverified; /* email and SMS to unverified accounts */
	long long rate_limit_auth;
	long long rate_limit_api;
	long long login_failures_max;
	long long login_failure_window;
	long long rate_limit_login_closed;
	long long order_expiry_seconds;
	long long order_unpaid_hold_seconds;
	long long order_unpaid_max;
	long long order_reserved_units_max;
	long long order_reserved_units_per_ip;
	long long order_wait_max;
	long long order_waiters_max;
	long long order_waits_per_user;
	long long order_waits_per_ip;
	char *payment_provider;
	char *payment_gateway_url;
	char *payment_gateway_key;
	long long payment_timeout_ms;
	char *webhook_secret;
	long long outbox_max_attempts;
	long long outbox_backoff_ms;
	long long outbox_backoff_max_ms;
	long long worker_lease_seconds;
	long long worker_batch;
	long long worker_poll_ms;
	char *s3_endpoint;
	char *s3_bucket;
	char *s3_region;
	char *s3_access_key;
	char *s3_secret_key;
	long long storage_timeout_ms;
	long long file_max_bytes;
	char *public_url;
	char *seller_name;
	char *seller_address;
	char *invoice_font;
	char *notify_channels;
	char *smtp_url;
	char *smtp_from;
	char *smtp_user;
	char *smtp_password;
	char *sms_url;
	char *sms_token;
	long long notify_timeout_ms;
	long long provider_timeout_ms; /* each call to a sign-in provider */
	long long analytics_retention_days;
	struct agora_provider *providers[AGORA_PROVIDERS_MAX];
	size_t nproviders;
};
/* The provider called name, or NULL. */
const struct agora_provider *agora_provider_find(
    const struct agora_config *cfg, const char *name);
/* HTTPS, or plain HTTP to this host alone (config.c). */
int agora_url_safe(const char *url);

/* What a multipart upload may add to file_max_bytes (headers, boundary). */
#define AGORA_UPLOAD_SLACK_BYTES (64 * 1024)

/*
 * Load the configuration: compiled-in defaults, then the file named by
 * $AGORA_CONFIG or $sysconfdir/agora/agora.conf, then AGORA_<KEY>
 * environment variables.  On failure writes a message naming the file and
 * line into err and returns -1; the caller owns cfg and frees it with
 * agora_config_free().
 */
int agora_config_load(struct agora_config *cfg, char *err, size_t errlen);
int agora_config_load_for(
    struct agora_config *cfg, unsigned needs, char *err, size_t errlen);
int agora_config_secrets(
    struct agora_config *cfg, unsigned needs, char *err, size_t errlen);
int agora_config_parse(struct agora_config *cfg, const char *text,
    const char *name, char *err, size_t errlen);
int agora_config_env(
    struct agora_config *cfg, char *const *envp, char *err, size_t errlen);
int agora_config_check(
    const struct agora_config *cfg, char *err, size_t errlen);
long long agora_worker_lease(const struct agora_config *cfg);
void agora_config_defaults(struct agora_config *cfg);
void agora_config_free(struct agora_config *cfg);
const char *agora_config_path(void);
const char *agora_config_secret_name(enum agora_secret s);

/* A bounded bump allocator, reset at the top of every request. */
struct agora_arena;
struct agora_arena *agora_arena_new(size_t cap);
void *agora_arena_alloc(struct agora_arena *a, size_t n);
void agora_arena_reset(struct agora_arena *a);
void agora_arena_free(struct agora_arena *a);
int agora_arena_defer(struct agora_arena *a, void (*fn)(void *), void *p);
size_t agora_arena_used(const struct agora_arena *a);
int agora_arena_failed(const struct agora_arena *a);

/* Prepared statements a program declares; prepared once per connection. */
struct agora_stmt {
	const char *name;
	const char *sql;
	unsigned flags; /* AGORA_STMT_* */
};
/*
 * The statement only reads (no write, no row lock, no volatile function of
 * ours): run outside a transaction, it may run again on a new connection
 * after the old one broke, since the first run changed nothing.  Every
 * other statement answers 503 then, for it may have committed.  A test
 * (tests/db_statements.py) checks the flag against what the SQL calls.
 */
#define AGORA_STMT_READ 0x1
/*
 * Planned anew for each execution, with its values (sent unnamed, with
 * PQexecParams): for statements whose best plan depends on which of their
 * filters are given.  Others are prepared once and keep the plan
 * PostgreSQL chooses, usually a generic one.
 */
#define AGORA_STMT_CUSTOM_PLAN 0x2
/*
 * A read that may be answered by the replica (database_read_url) when it
 * lags less than database_read_max_lag_ms: _ANON only for a request with
 * no user, who has no write of their own to miss (the catalog, which
 * admins write); _REPLICA for anyone (reports that tolerate a second).
 * Both need AGORA_STMT_READ.  doc/scale-out.md, "The read replica".
 */
#define AGORA_STMT_REPLICA_ANON 0x4
#define AGORA_STMT_REPLICA 0x8

struct agora_db;
struct agora_cache;
struct agora_auth;

/* The per-process context, built before the accept loop. */
struct agora_ctx {
	const char *program;
	struct agora_config cfg;
	struct agora_db *db;
	struct agora_cache *cache;
	struct agora_auth *auth; /* NULL when the token keys are missing */
};

/*
 * Who may call a route.  Every route must say: a route left at
 * AGORA_ACCESS_UNSET stops its program at start-up (default deny).
 * Owner-or-admin routes are AGORA_USER routes whose handler checks the
 * owner with agora_owner_or_admin() and answers 404 to anyone else.
 */
enum agora_access {
	AGORA_ACCESS_UNSET = 0,
	AGORA_ANON, /* anyone; a token, if sent, must be valid */
	AGORA_USER, /* any valid access token */
	AGORA_ADMIN, /* a token with role admin */
	AGORA_ACCESS__MAX
};

/* Which rate limit a route counts against. */
enum agora_rl {
	AGORA_RL_API = 0, /* rate_limit_api per client per minute */
	/*
	 * The same limit, counted with the handler's first versioned cache
	 * read (agora_cached_read): the counter is read in that read's round
	 * trip and bumped without waiting, so a cached read costs one round
	 * trip, not two.  Concurrent requests of one client may overshoot by
	 * their number; the auth limits never use it.
	 */
	AGORA_RL_API_READ,
	AGORA_RL_AUTH, /* rate_limit_auth per IP per minute */
	AGORA_RL_NONE /* not limited: health checks, the API document */
};

enum agora_body {
	AGORA_BODY_NONE = 0, /* a body, if any, is ignored */
	AGORA_BODY_JSON, /* application/json, parsed strictly */
	AGORA_BODY_JSON_OPTIONAL, /* the same, or no body at all (json NULL) */
	AGORA_BODY_RAW /* any bytes, up to file_max_bytes (uploads) */
};

#define AGORA_MAX_PARAMS 4
#define AGORA_MAX_HEADERS 24

struct agora_hdr {
	const char *name;
	const char *value;
};

/*
 * One request.  The parsing fields are set by the library before the
 * handler runs; the response fields are filled through agora_resp_*().
 */
struct agora_req {
	struct agora_ctx *ctx;
	struct agora_arena *arena;
	char *const *envp;
	struct timespec start;
	/* What the request waited for PostgreSQL and memcached, in
	 * microseconds: its Server-Timing answer header. */
	long long db_us, cache_us;
	/* A statement of this request read the replica (lib/db.c): what it
	 * read may be stale, so it is never cached. */
	int from_replica;

	const char *method;
	const char *path; /* percent-decoded, without the query */
	const char *query; /* raw query string, never NULL */
	const char *request_id;
	const char *user; /* the caller's user id; NULL if anonymous */
	const char *role; /* "customer" or "admin" when user is set */
	long long gen; /* the token's generation (sql/0014) when user is set */
	const char *sid; /* the token's session (sql/0023), or NULL */
	const struct agora_route *route; /* the route matched, or NULL */
	const char *params[AGORA_MAX_PARAMS]; /* row ids (route.c) */
	size_t nparams;
	long long content_length;
	const char *body;
	size_t body_len;
	struct json_object *json; /* the parsed body of a JSON route */
	int head; /* a HEAD request: send no body */

	int status;
	struct agora_hdr headers[AGORA_MAX_HEADERS];
	size_t nheaders;
	const char *content_type;
	const char *out;
	size_t out_len;
	const char *error_code; /* the problem code sent, for the log */
	const char *sqlstate; /* of the last failed statement */
	const char *constraint; /* of the last failed statement */
	struct agora_rl_count
	    *rl; /* a deferred rate-limit count (ratelimit.c) */
};

typedef enum agora_err (*agora_handler)(struct agora_req *);

struct agora_route {
	const char *method; /* "GET", "POST", ... */
	const char *pattern; /* "/api/v1/orders/{id}": {x} is one segment */
	enum agora_body body;
	agora_handler handler;
	enum agora_access access;
	enum agora_rl rl;
	/*
	 * Optional: runs on the raw body before it is parsed, and refuses the
	 * request by answering with a problem.  A webhook checks its
	 * signature here, so that nobody without the secret makes the
	 * program parse anything.
	 */
	agora_handler guard;
};

struct agora_program {
	const char *name;
	const struct agora_route *routes;
	size_t nroutes;
	const struct agora_stmt *stmts;
	size_t nstmts;
	/* Optional: runs once after configuration, before the accept loop. */
	int (*init)(struct agora_ctx *ctx);
	/* The secrets its work needs beyond database_url (AGORA_NEEDS). */
	unsigned needs;
};

#define AGORA_NELEM(a) (sizeof(a) / sizeof((a)[0]))
/* A macro's value as a string literal: AGORA_STR(BATCH) is "100". */
#define AGORA_STR_(x) #x
#define AGORA_STR(x) AGORA_STR_(x)

/* A program's main(): serve prog (a struct agora_program). */
#define AGORA_MAIN(prog)                                                       \
	int main(int argc, char **argv)                                        \
	{                                                                      \
		return agora_main(argc, argv, &(prog));                        \
	}

/*
 * Serve requests: FastCGI when started by a web server or spawn-fcgi, one
 * request as plain CGI otherwise.  "--routes" prints the route table,
 * "--statements" the SQL statements (agora_db_print_stmts).
 * Returns the process exit status.
 */
int agora_main(int argc, char **argv, const struct agora_program *prog);

/* Whether SIGTERM asked the process to stop; long waits end early. */
int agora_stopping(void);

/*
 * Handle one request whose CGI variables are envp and whose body is
 * readable through rd.  Writes the whole response with wr.  Exposed so
 * that tests can drive the request path without a web server.
 */
struct agora_io {
	long (*read)(void *io, char *buf, size_t n);
	int (*write)(void *io, const char *buf, size_t n);
	void *arg;
};
void agora_handle(struct agora_ctx *ctx, const struct agora_program *prog,
    struct agora_arena *arena, char *const *envp, const struct agora_io *io);

/* Request helpers. */
const char *agora_param(const struct agora_req *r, const char *name);
const char *agora_cookie(struct agora_req *r, const char *name);
int agora_cookies(
    struct agora_req *r, const char *name, const char **out, int max);
const char *agora_client_addr(struct agora_req *r);
char *agora_strdup(struct agora_req *r, const char *s);
char *agora_printf(struct agora_req *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void *agora_alloc(struct agora_req *r, size_t n);
int agora_defer_json(struct agora_req *r, struct json_object *o);
/*
 * json_object_object_add and json_object_array_add that hold when memory
 * runs out: json-c asserts on a NULL container and leaves a value it
 * could not add with the caller; these release it then.  0, or -1.
 */
int agora_json_set(
    struct json_object *o, const char *key, struct json_object *v);
int agora_json_push(struct json_object *a, struct json_object *v);
/*
 * Whether an If-None-Match header value (a list of entity tags, or "*")
 * matches etag; weak comparison, as RFC 9110 asks for If-None-Match.
 */
int agora_etag_match(const char *if_none_match, const char *etag);

/* Responses.  The last call wins; nothing is written until the end. */
void agora_resp_header(
    struct agora_req *r, const char *name, const char *value);
void agora_resp_header_add(
    struct agora_req *r, const char *name, const char *value);
int agora_resp_has_header(const struct agora_req *r, const char *name);
enum agora_err agora_resp_json(
    struct agora_req *r, int status, struct json_object *o);
enum agora_err agora_resp_raw(struct agora_req *r, int status,
    const char *content_type, const char *body, size_t len);
/* The JSON document in a cell of res (built by SQL) as the body. */
enum agora_err agora_resp_cell(
    struct agora_req *r, int status, const PGresult *res, int row, int col);
enum agora_err agora_problem(struct agora_req *r, enum agora_err e,
    const char *code, const char *detail);
enum agora_err agora_problem_errors(struct agora_req *r, enum agora_err e,
    const char *detail, struct json_object *errors);
enum agora_err agora_problem_ext(struct agora_req *r, enum agora_err e,
    const char *code, const char *detail, const char *name,
    struct json_object *value);
/*
 * A JSON document to send with a strong ETag (the first 128 bits of its
 * SHA-256, quoted), as read from the cache or made by agora_doc_set.
 */
#define AGORA_ETAG_LEN 34
struct agora_doc {
	const char *body;
	size_t len;
	char etag[AGORA_ETAG_LEN + 1];
};
void agora_doc_set(struct agora_doc *doc, const char *body, size_t len);
enum agora_err agora_resp_tagged(struct agora_req *r,
    const struct agora_doc *doc, const char *cache_control);
enum agora_err agora_resp_doc(struct agora_req *r, const char *body, size_t len,
    const char *cache_control);
int agora_err_status(enum agora_err e);
const char *agora_err_code(enum agora_err e);
const char *agora_status_text(int status);

/* Strict JSON: see json.c for what is rejected. */
#define AGORA_JSON_MAX_DEPTH 16
#define AGORA_JSON_MAX_VALUES 20000
/* What json-c may allocate for one body's structure, strings aside. */
#define AGORA_JSON_MAX_MEMORY (4 * 1024 * 1024)
#define AGORA_JSON_NUMBER_MAX 40
enum agora_err agora_json_parse(
    const char *buf, size_t len, struct json_object **out, const char **why);
int agora_utf8_valid(const char *s, size_t len);
size_t agora_utf8_len(const char *s, size_t len);

/*
 * Field-table validation of a JSON object.  Type errors make the result
 * AGORA_E_BAD_TYPE (400), other violations AGORA_E_VALIDATION (422); each
 * adds {field, message} to errors.  Unknown fields are violations.
 */
enum agora_ftype {
	AGORA_F_STRING,
	AGORA_F_INT,
	AGORA_F_BOOL,
	AGORA_F_OBJECT,
	AGORA_F_ARRAY,
	AGORA_F__MAX
};
#define AGORA_F_REQUIRED 0x1

struct agora_field {
	const char *name;
	enum agora_ftype type;
	unsigned flags;
	long long min; /* INT: value; STRING: characters; ARRAY: items */
	long long max;
};

struct agora_value {
	int present;
	const char *s;
	size_t len;
	long long i;
	int b;
	struct json_object *o;
};

enum agora_err agora_valid(struct json_object *obj, const char *prefix,
    const struct agora_field *fields, size_t nfields, struct agora_value *out,
    struct json_object *errors);

enum agora_err agora_valid_body(struct agora_req *r,
    const struct agora_field *fields, size_t nfields, struct agora_value *v);
/* The entries an errors list holds before unknown members are left out
 * of it: a body of thousands of them is answered with the first ones, not
 * with a list its own size again (the JSON limits bound the body, not the
 * answer).  Errors of the known fields are always listed. */
#define AGORA_ERRORS_MAX 50
void agora_error_add(struct json_object *errors, const char *prefix,
    const char *name, const char *message);
enum agora_err agora_problem_field(struct agora_req *r, enum agora_err e,
    const char *field, const char *message);

/* Routing. */
enum agora_err agora_route_match(const struct agora_route *routes,
    size_t nroutes, const char *method, const char *path,
    const struct agora_route **found, const char **params, size_t *nparams,
    char *allow, size_t allowlen, char *scratch, size_t scratchlen);
/* 404 "No such order." for the row the route's first parameter names
 * (route.c): a handler's answer for an id that has no row. */
enum agora_err agora_not_found(struct agora_req *r);

/*
 * Whether s is a row id as the API writes them: a decimal from 1 to
 * INT64_MAX with no sign, no leading zero and no spaces, so that each row
 * has exactly one spelling (cache keys depend on it).
 */
int agora_id_ok(const char *s);

/* Integers parsed with bounds, strtonum-style: 0 or -1. */
int agora_parse_ll(const char *s, long long min, long long max, long long *out);

/* PostgreSQL, one connection per process. */
struct agora_db *agora_db_new(
    const char *url, const struct agora_stmt *stmts, size_t nstmts);
/* No prepared statement at all, not even the library's (agoractl). */
struct agora_db *agora_db_bare(const char *url);
void agora_db_free(struct agora_db *db);
void agora_db_timeout(struct agora_db *db, long long ms);
int agora_db_ready(const struct agora_db *db);
enum agora_err agora_db_connect(struct agora_db *db);
void agora_db_check(struct agora_db *db);
int agora_db_replica(
    struct agora_db *db, const char *url, long long max_lag_ms);
enum agora_err agora_db_query(struct agora_req *r, const char *stmt, int n,
    const char *const *vals, PGresult **out);
enum agora_err agora_db_tx(struct agora_req *r,
    enum agora_err (*fn)(struct agora_req *, void *), void *arg);
enum agora_err agora_db_write(struct agora_req *r, const char *stmt, int n,
    const char *const *vals, PGresult **out);
enum agora_err agora_db_sqlstate_err(const char *sqlstate);
PGconn *agora_db_conn(struct agora_db *db);
unsigned long agora_db_generation(const struct agora_db *db);
void agora_db_print_stmts(const struct agora_stmt *stmts, size_t n);

/* memcached: every failure is a miss, never an error for the request. */
struct agora_cache *agora_cache_new(const char *servers);
void agora_cache_free(struct agora_cache *c);
int agora_cache_get(
    struct agora_req *r, const char *key, char **val, size_t *len);
void agora_cache_set(struct agora_ctx *ctx, const char *key, const char *val,
    size_t len, time_t ttl);
void agora_cache_raise(
    struct agora_ctx *ctx, const char *key, long long value, time_t ttl);
const char *agora_cache_ping(struct agora_ctx *ctx);
int agora_cache_check(const char *servers,
    void (*fn)(void *, const char *, const char *), void *arg);

/* Access tokens and authorization (auth.c). */
void agora_auth_init(struct agora_ctx *ctx);
void agora_auth_free(struct agora_ctx *ctx);
const char *agora_auth_jwks(struct agora_ctx *ctx);
int agora_auth_can_sign(struct agora_ctx *ctx);
char *agora_token_issue(struct agora_req *r, const char *sub, const char *role,
    const char *gen, const char *sid);
void agora_token_gen_set(
    struct agora_ctx *ctx, const char *user, const char *gen);
enum agora_err agora_auth_request(
    struct agora_req *r, enum agora_access access);
int agora_owner_or_admin(const struct agora_req *r, const char *owner);
/*
 * Run stmt with the path's id; its first column is the row's owner.  404
 * "No such <what>." for a malformed id, no row, or a row of somebody else
 * (unless the caller is an admin), so that others' ids leak nothing.
 */
enum agora_err agora_owned_row(
    struct agora_req *r, const char *stmt, const char *what, PGresult **res);

/* Passwords: Argon2id through libsodium (password.c). */
#define AGORA_PASSWORD_HASH_MAX 128
int agora_password_hash(const char *pw, size_t len, char *out, size_t outlen);
int agora_password_verify(
    const char *stored, const char *pw, size_t len, int *rehash);
void agora_password_dummy(const char *pw, size_t len);

/* Rate limits shared through memcached (ratelimit.c). */
enum agora_err agora_rate_limit(struct agora_req *r, const char *klass,
    const char *who, long long limit, long long window);
enum agora_err agora_rate_limit_quiet(struct agora_req *r, const char *klass,
    const char *who, long long limit, long long window);
enum agora_err agora_guard_enter(struct agora_req *r, const char *klass,
    const char *who, long long max, long long window, int fail_closed);
void agora_guard_pass(
    struct agora_req *r, const char *klass, const char *who, long long window);
void agora_guard_clear(
    struct agora_req *r, const char *klass, const char *who, long long window);
void agora_cache_decr(struct agora_ctx *ctx, const char *key);
void agora_cache_delete(struct agora_ctx *ctx, const char *key);
void agora_cache_add_quiet(
    struct agora_ctx *ctx, const char *key, uint64_t n, time_t ttl);
/*
 * A deferred count (AGORA_RL_API_READ) that no cached read took is counted
 * by flush after the handler, whose answer a 429 then replaces.
 */
enum agora_err agora_rate_limit_flush(struct agora_req *r);
void agora_rate_limit_drain(struct agora_ctx *ctx);
int agora_cache_incr(
    struct agora_ctx *ctx, const char *key, time_t ttl, uint64_t *value);

/*
 * Stored files (storage.c): backend is "local" or "s3", as recorded with
 * the file.  put and get return 0, or -1 with err set; get returns 1 when
 * the key does not exist.  get's *data is malloc'd; the caller frees it.
 */
int agora_storage_put(const struct agora_config *cfg, const char *backend,
    const char *key, const void *data, size_t len, const char *ctype, char *err,
    size_t errlen);
int agora_storage_get(const struct agora_config *cfg, const char *backend,
    const char *key, size_t max, char **data, size_t *len, char *err,
    size_t errlen);
int agora_storage_key_ok(const char *key);
const char *agora_storage_check(const struct agora_config *cfg);

/*
 * Versioned read-through caching (cache.c).  vget returns 0 on a hit, -1
 * on a miss; extra, when not NULL, is one more key read in the same round
 * trip.  Handlers read through agora_cached_read (ratelimit.c), which also
 * counts the request's deferred rate limit (AGORA_RL_API_READ) with that
 * round trip; it returns AGORA_CACHE_LIMITED when the limit refused the
 * request: the 429 answer is set, and the handler returns
 * AGORA_E_RATE_LIMITED.
 */
#define AGORA_CACHE_LIMITED (-2)
struct agora_cache_extra {
	const char *key; /* in */
	const char *val; /* out: its value, NULL when absent */
	int read; /* out: whether the cache was asked */
};
int agora_cache_vget(struct agora_req *r, const char *verkey, const char *key,
    struct agora_doc *doc, char *ver, size_t verlen,
    struct agora_cache_extra *extra);
int agora_cached_read(struct agora_req *r, const char *verkey, const char *key,
    struct agora_doc *doc, char *ver, size_t verlen);
void agora_cache_vset(struct agora_req *r, const char *key, const char *ver,
    const struct agora_doc *doc, time_t ttl);
void agora_cache_bump(
    struct agora_ctx *ctx, const char *verkey, const char *key);

/*
 * Query strings (valid.c), one parser for both: keys are compared
 * decoded, and a pair without '=' has the value "" ("?limit" is
 * "?limit=").  get gives the decoded value of the first pair whose key is
 * name (NULL when none; a bad escape in its value answers 400; a key that
 * does not decode is skipped); next gives each decoded pair after *pos
 * (start with NULL; both NULL at the end) and answers 400 for any bad
 * escape, for the routes that refuse what they do not know.
 */
enum agora_err agora_query_get(
    struct agora_req *r, const char *name, const char **out);
enum agora_err agora_query_next(
    struct agora_req *r, const char **pos, const char **key, const char **val);

/*
 * A route's query parameters as a table (kcgi's way): each one's name,
 * what its value must be, and the problem a bad value answers (code, and
 * detail; NULL: "Query parameter NAME must be ...").  A name ending in
 * '.' is a prefix ("attr.") whose parameters the route reads itself.
 */
enum agora_qtype {
	AGORA_Q_TEXT, /* at most max characters */
	AGORA_Q_INT, /* a decimal integer from min to max */
	AGORA_Q_ID, /* a row id (agora_id_ok) */
	AGORA_Q_ONE_OF /* one of choices (NULL-terminated) */
};

struct agora_qfield {
	const char *name;
	enum agora_qtype type;
	long long min, max;
	const char *const *choices;
	const char *code, *detail;
};

struct agora_qvalue {
	const char *s; /* the decoded value; NULL when absent */
	long long n; /* AGORA_Q_INT: the number; AGORA_Q_ONE_OF: the index */
};

/*
 * Each field of f (n of them) from the query string into v[i], the first
 * pair of its name (agora_query_get); 400 with the field's problem for a
 * bad value.  strict: also 400 unknown_parameter for a pair that is no
 * field's, and every pair of a field's name is checked, not only the
 * first.  The first problem in the query string's order answers (a
 * non-strict route: a bad escape in any field's value, then a bad value).
 */
enum agora_err agora_query_fields(struct agora_req *r,
    const struct agora_qfield *f, size_t n, int strict, struct agora_qvalue *v);

/*
 * The trace of the work the process does now (trace.c, W3C Trace
 * Context): begin takes a request's traceparent header (NULL, or one that
 * does not parse: a new trace); continue takes an outbox row's trace id;
 * header writes "00-<trace id>-<span>-<flags>" of this span, or of a new
 * child span for an outgoing call, and is -1 outside a trace.
 */
#define AGORA_TRACEPARENT_LEN 55
void agora_trace_begin(const char *traceparent);
void agora_trace_continue(const char *trace_id);
void agora_trace_end(void);
const char *agora_trace_id(void);
int agora_trace_header(char out[AGORA_TRACEPARENT_LEN + 1], int child);

/* Logging: one JSON object per line on stderr, written with one write(2). */
void agora_log_init(const char *program);
void agora_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void agora_log_request(const struct agora_req *r);

/* Random identifiers from libsodium: hex of n random bytes into out. */
void agora_random_hex(char *out, size_t nbytes);
void agora_sha256_hex(const void *data, size_t len, char out[65]);
#define AGORA_SECRET_TEXT 64 /* base64url of 32 bytes, with room */
void agora_secret_new(char tok[AGORA_SECRET_TEXT], char hash[65]);
/* Write all n bytes to fd, again after EINTR; 0, or -1 with errno. */
int agora_write_all(int fd, const void *buf, size_t n);
long long agora_clock_ms(clockid_t id);

/*
 * A PostgreSQL array literal of row ids or counts ("{1,22,333}"), built
 * in a buffer the caller gives.  An element must be digits, with a '-'
 * first at most: nothing a literal would have to quote.  One that is not,
 * or that does not fit, makes agora_pga_end return NULL, never a list
 * cut short.  A buffer of n * AGORA_PGA_ELEM_MAX + 3 bytes holds n.
 */
struct agora_pga {
	char *buf;
	size_t cap, len;
	int bad;
};
#define AGORA_PGA_ELEM_MAX 21 /* "-9223372036854775808" and a comma */
void agora_pga_init(struct agora_pga *a, char *buf, size_t cap);
void agora_pga_add(struct agora_pga *a, const char *elem);
void agora_pga_add_ll(struct agora_pga *a, long long v);
const char *agora_pga_end(struct agora_pga *a);
/*
 * The contents of path, NUL-terminated, at most max bytes, in a buffer
 * the caller frees (wiped first, when it held a secret); *len its length.
 * NULL with errno set (ENOENT: no such file; EFBIG: longer than max) and
 * err saying why.  Unbuffered: no copy is left in stdio's buffer.
 */
char *agora_read_file(
    const char *path, size_t max, size_t *len, char *err, size_t errlen);
/* Microseconds from a to b (negative when b is the earlier). */
long long agora_ts_us(const struct timespec *a, const struct timespec *b);
/* Milliseconds since t, on CLOCK_MONOTONIC. */
long long agora_ms_since(const struct timespec *t);
/* Microseconds since t, on CLOCK_MONOTONIC. */
long long agora_us_since(const struct timespec *t);

/*
 * Metrics (metrics.c, doc/metrics.md): a program describes its series once
 * (a set of counters and histograms, each with its labels, escaped with
 * agora_mlabel), opens its file with them, then adds to them by index.
 * Histograms have AGORA_MBUCKETS bounds from 1 ms to 10 s.
 */
enum agora_mfam {
	AGORA_MF_REQUESTS,
	AGORA_MF_DURATION,
	AGORA_MF_DB_SECONDS,
	AGORA_MF_DB_STATEMENTS,
	AGORA_MF_CACHE,
	AGORA_MF_RATE_LIMITED,
	AGORA_MF_AUTH_FAILURES,
	AGORA_MF_ERRORS,
	AGORA_MF_JOBS,
	AGORA_MF_JOB_DURATION,
	AGORA_MF_CALLS,
	AGORA_MF_CALL_DURATION,
	AGORA_MF_LAST_PASS,
	AGORA_MF__MAX
};
#define AGORA_MBUCKETS 13
struct agora_mset;
struct agora_mset *agora_mset_new(void);
long agora_mset_counter(
    struct agora_mset *s, enum agora_mfam f, const char *labels);
long agora_mset_histogram(
    struct agora_mset *s, enum agora_mfam f, const char *labels);
void agora_mset_free(struct agora_mset *s);
const char *agora_mlabel(char *out, size_t len, const char *value);
int agora_metrics_open(
    const char *dir, const char *program, struct agora_mset *s);
void agora_metrics_close(void);
void agora_metric_add(long i, uint64_t v);
void agora_metric_set(long i, uint64_t v);
void agora_metric_observe(long first, long long us);
int agora_metrics_scrape(const char *dir, FILE *out);

/*
 * A request's part in the metrics (observe.c): the program's series are
 * opened before the accept loop; the database and cache layers report to
 * the route of the request being served.
 */
enum agora_cache_result {
	AGORA_CACHE_HIT,
	AGORA_CACHE_MISS,
	AGORA_CACHE_ERROR
};
int agora_observe_open(struct agora_ctx *ctx, const struct agora_program *p);
void agora_observe_begin(const struct agora_req *r);
void agora_observe_end(const struct agora_req *r, int db_up);
void agora_observe_db(long long us, int statements);
void agora_observe_cache(enum agora_cache_result res);

#endif /* AGORA_H */
