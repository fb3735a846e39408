/*
 * user.c: agoractl user add|list|set-role|disable|enable.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int
role_ok(const char *role)
{
	return strcmp(role, "customer") == 0 || strcmp(role, "admin") == 0;
}

/* One line from stdin, without its newline; NULL when empty or too long. */
static char *
read_password(char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, stdin) == NULL)
		return NULL;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (n == len - 1)
		return NULL;
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return n > 0 ? buf : NULL;
}

int
ctl_user_add(int argc, char **argv)
{
	const char *email = NULL, *name = NULL, *role = "customer";
	char pw[AGORA_PASSWORD_MAX + 2], hash[AGORA_PASSWORD_HASH_MAX];
	const char *vals[4];
	int i, from_stdin = 0, rc = 1;
	PGconn *c;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--password-stdin") == 0)
			from_stdin = 1;
		else if (i + 1 < argc && strcmp(argv[i], "--email") == 0)
			email = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--name") == 0)
			name = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--role") == 0)
			role = argv[++i];
		else
			return ctl_usage();
	}
	if (email == NULL || name == NULL || !from_stdin || !role_ok(role))
		return ctl_usage();
	if (!agora_email_valid(email, strlen(email))) {
		fprintf(
		    stderr, "agoractl: %s is not an email address\n", email);
		return 1;
	}
	if (read_password(pw, sizeof(pw)) == NULL ||
	    agora_utf8_len(pw, strlen(pw)) < AGORA_PASSWORD_MIN) {
		fprintf(stderr,
		    "agoractl: the password (one line on stdin) "
		    "needs %d to %d characters\n",
		    AGORA_PASSWORD_MIN, AGORA_PASSWORD_MAX);
		return 1;
	}
	if (agora_password_hash(pw, strlen(pw), hash, sizeof(hash)) != 0 ||
	    (c = ctl_connect()) == NULL)
		goto out;
	vals[0] = email;
	vals[1] = name;
	vals[2] = role;
	vals[3] = hash;
	rc = ctl_exec_params(c,
	    "INSERT INTO users (email, name, role, password_hash) "
	    "VALUES (lower($1), $2, $3, $4) RETURNING id::text, email, role",
	    4, vals, 1);
	ctl_disconnect();
out:
	sodium_memzero(pw, sizeof(pw));
	return rc;
}

/*
 * set-role EMAIL ROLE, disable EMAIL, enable EMAIL: verb is the command,
 * role NULL but for set-role.
 */
static int
user_change(const char *verb, const char *email, const char *role)
{
	const char *vals[3] = { email, role, NULL };
	PGresult *res;
	PGconn *c;
	int rc = 1;

	if (role == NULL)
		vals[2] = strcmp(verb, "disable") == 0 ? "true" : "false";
	if ((c = ctl_connect()) == NULL)
		return 1;
	/* As an admin's PATCH /users/{id} does it (sql/0016), as the system. */
	res = PQexecParams(c,
	    "SELECT id, token_gen::text FROM user_admin_update(NULL, NULL, "
	    "(SELECT id FROM users WHERE email = lower($1)), $2, $3::bool)",
	    3, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	else if (PQntuples(res) == 0)
		fprintf(stderr, "agoractl: no such user: %s\n", email);
	else
		rc = 0;
	if (rc == 0) {
		/* The user's access tokens stop working at once. */
		ctl_with_cache(agora_token_gen_set, PQgetvalue(res, 0, 0),
		    PQgetvalue(res, 0, 1));
		if (role != NULL)
			printf("%s is now %s\n", email, role);
		else
			printf("%s is %sd\n", email, verb);
	}
	PQclear(res);
	ctl_disconnect();
	return rc;
}

int
ctl_user_set_role(int argc, char **argv)
{
	if (argc != 2 || !role_ok(argv[1]))
		return ctl_usage();
	return user_change("set-role", argv[0], argv[1]);
}

int
ctl_user_disable(int argc, char **argv)
{
	if (argc != 1)
		return ctl_usage();
	return user_change("disable", argv[0], NULL);
}

int
ctl_user_enable(int argc, char **argv)
{
	if (argc != 1)
		return ctl_usage();
	return user_change("enable", argv[0], NULL);
}

/*
 * logout EMAIL: what "log out everywhere" does for the user, done by the
 * system (user_sessions_end with no caller): every refresh token is
 * revoked, and the token generation moves on so that every access token
 * is refused from the next request.  The count is of the sessions that
 * had a live token, taken in the same snapshot before they ended.
 */
int
ctl_user_logout(int argc, char **argv)
{
	PGresult *res;
	PGconn *c;
	int rc = 1;

	if (argc != 1)
		return ctl_usage();
	if ((c = ctl_connect()) == NULL)
		return 1;
	res = PQexecParams(c,
	    "WITH u AS MATERIALIZED (SELECT id, (SELECT count(DISTINCT family) "
	    "FROM refresh_tokens t WHERE t.user_id = users.id "
	    "AND t.revoked_at IS NULL AND t.expires_at > now()) AS n "
	    "FROM users WHERE email = lower($1)) "
	    "SELECT id::text, user_sessions_end(NULL, NULL, id)::text, "
	    "n::text FROM u",
	    1, NULL, (const char *const *)argv, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	else if (PQntuples(res) == 0)
		fprintf(stderr, "agoractl: no such user: %s\n", argv[0]);
	else
		rc = 0;
	if (rc == 0) {
		ctl_with_cache(agora_token_gen_set, PQgetvalue(res, 0, 0),
		    PQgetvalue(res, 0, 1));
		printf("%s is logged out everywhere (%s session%s ended)\n",
		    argv[0], PQgetvalue(res, 0, 2),
		    strcmp(PQgetvalue(res, 0, 2), "1") == 0 ? "" : "s");
	}
	PQclear(res);
	ctl_disconnect();
	return rc;
}

int
ctl_user_list(int argc, char **argv)
{
	(void)argv;
	if (argc != 0)
		return ctl_usage();
	return ctl_print(NULL,
	    "SELECT id::text, email, role, name, "
	    "agora_time(created_at), CASE WHEN disabled_at IS NULL "
	    "THEN 'enabled' ELSE 'disabled' END "
	    "FROM users ORDER BY users.id",
	    0, NULL);
}
