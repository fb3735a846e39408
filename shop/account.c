/*
 * account.c: what the auth and users programs and agoractl share about
 * accounts: the user object and the email check.
 */
#include "config.h"

#include <string.h>

#include "shop.h"

/*
 * {id, email, name, role, created_at, disabled, email_verified} from a
 * row of AGORA_USER_COLUMNS.
 */
struct json_object *
agora_user_json(PGresult *res, int row)
{
	static const char *const names[] = { "id", "email", "name", "role",
		"created_at" };
	struct json_object *o;
	size_t i;

	o = json_object_new_object();
	for (i = 0; o != NULL && i < sizeof(names) / sizeof(names[0]); i++)
		agora_json_set(o, names[i],
		    json_object_new_string(PQgetvalue(res, row, (int)i)));
	json_object_object_add(o, "disabled",
	    json_object_new_boolean(*PQgetvalue(res, row, (int)i) == 't'));
	json_object_object_add(o, "email_verified",
	    json_object_new_boolean(*PQgetvalue(res, row, (int)i + 1) == 't'));
	return o;
}

/*
 * A deliberately plain check: one '@' with something before it, a domain
 * with a dot that neither starts nor ends it, no spaces or controls.
 * Whether the address works is for a confirmation mail to find out.
 */
int
agora_email_valid(const char *s, size_t len)
{
	const char *at, *dot;
	size_t i;

	if (len < 3 || len > 254 || strlen(s) != len)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return 0;
	at = strchr(s, '@');
	if (at == NULL || at == s || strchr(at + 1, '@') != NULL)
		return 0;
	dot = strrchr(at + 1, '.');
	return dot != NULL && dot > at + 1 && dot[1] != '\0';
}
