/*
 * req.c: what the web server handed over, read as it is: the environment,
 * the path's percent-decoding, the client's address and the pairs of the
 * query string.  The bottom of the request layers: it answers nothing
 * (a caller above says what is wrong), so that everything may use it.
 *
 * The request path comes from REQUEST_URI, which Apache (mod_fcgid and
 * mod_proxy_fcgi) and lighttpd all pass unchanged, so that routing does not
 * depend on how each server splits SCRIPT_NAME and PATH_INFO; it is
 * percent-decoded once and must decode to UTF-8 without NUL.
 */
#include "config.h"

#include <arpa/inet.h>

#include <string.h>

#include "agora.h"
#include "internal.h"

const char *
agora_param(const struct agora_req *r, const char *name)
{
	size_t n = strlen(name);
	char *const *e;

	for (e = r->envp; e != NULL && *e != NULL; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/*
 * Where the value of the next cookie called name starts in the Cookie
 * header h (RFC 6265, section 4.2: "a=1; b=2"), its length in *len;
 * NULL when there is none.
 */
static const char *
cookie_next(const char *h, const char *name, size_t *len)
{
	size_t n = strlen(name), l;

	while (h != NULL && *h != '\0') {
		h += strspn(h, " \t");
		l = strcspn(h, ";");
		if (l > n && strncmp(h, name, n) == 0 && h[n] == '=') {
			*len = l - n - 1;
			return h + n + 1;
		}
		h += l + (h[l] == ';');
	}
	return NULL;
}

/*
 * A copy in the arena of the cookie value v (len bytes), or NULL when it
 * holds characters RFC 6265 does not allow in a value: such a value is no
 * cookie of ours.
 */
static const char *
cookie_value(struct agora_req *r, const char *v, size_t len)
{
	char *out;

	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (strspn(v,
	        "!#$%&'()*+-./0123456789:<=>?@ABCDEFGHIJ"
	        "KLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqr"
	        "stuvwxyz{|}~") < len ||
	    (out = agora_alloc(r, len + 1)) == NULL)
		return NULL;
	memcpy(out, v, len);
	out[len] = '\0';
	return out;
}

/*
 * Every cookie called name in the request's Cookie header: the first max
 * values go into out (NULL for one no cookie of ours, see cookie_value);
 * returns how many the header holds.
 */
int
agora_cookies(struct agora_req *r, const char *name, const char **out, int max)
{
	const char *h = agora_param(r, "HTTP_COOKIE"), *v;
	size_t len;
	int n = 0;

	while ((v = cookie_next(h, name, &len)) != NULL) {
		if (n < max)
			out[n] = cookie_value(r, v, len);
		n++;
		h = v + len;
	}
	return n;
}

/*
 * The value of the cookie called name, a copy in the arena; NULL when
 * there is none, or more than one.  A second one of that name is none of
 * ours to choose from: a sibling subdomain can set a cookie for the
 * parent domain, and the browser sends both (a token planted so would
 * sign the shopper in to someone else's account).
 */
const char *
agora_cookie(struct agora_req *r, const char *name)
{
	const char *v;

	return agora_cookies(r, name, &v, 1) == 1 ? v : NULL;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decode n bytes of s into a new arena string; plus_space turns
 * '+' into ' ' (query strings).  NULL on a bad escape, a NUL or bad UTF-8.
 */
char *
agora_url_decode(struct agora_req *r, const char *s, size_t n, int plus_space)
{
	char *out, *o;
	size_t i;
	int hi, lo;

	out = o = agora_alloc(r, n + 1);
	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			if (i + 2 >= n)
				return NULL;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return NULL;
			*o++ = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == '+' && plus_space) {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return agora_utf8_valid(out, (size_t)(o - out)) ? out : NULL;
}

/*
 * The client's address as limits count it: an IPv4 address as it is, an
 * IPv6 address by its /64 (one client, or one home, holds a whole /64 and
 * may take a new address from it for every request), "-" when the web
 * server gave none.  An IPv4 address a dual-stack socket wrote as IPv6
 * (::ffff:192.0.2.1) counts as that IPv4 address: its /64 would put every
 * IPv4 client in one bucket.  Behind a proxy, REMOTE_ADDR must be the
 * client's (mod_remoteip, lighttpd's mod_extforward).
 */
const char *
agora_client_addr(struct agora_req *r)
{
	const char *ip = agora_param(r, "REMOTE_ADDR");
	struct in6_addr a;
	char *out;

	/* Only the characters of an address: it goes into keys and JSON. */
	if (ip == NULL || *ip == '\0' || strlen(ip) >= INET6_ADDRSTRLEN ||
	    strspn(ip, "0123456789abcdefABCDEF:.") != strlen(ip))
		return "-";
	if (strchr(ip, ':') == NULL || inet_pton(AF_INET6, ip, &a) != 1)
		return ip;
	if ((out = agora_alloc(r, INET6_ADDRSTRLEN + 3)) == NULL)
		return "-";
	if (IN6_IS_ADDR_V4MAPPED(&a)) {
		if (inet_ntop(AF_INET, a.s6_addr + 12, out, INET6_ADDRSTRLEN) ==
		    NULL)
			return "-";
		return out;
	}
	memset(a.s6_addr + 8, 0, 8);
	if (inet_ntop(AF_INET6, &a, out, INET6_ADDRSTRLEN) == NULL)
		return "-";
	memcpy(out + strlen(out), "/64", 4);
	return out;
}

/*
 * The next pair of the query after *pos (start with *pos NULL): its key,
 * percent-decoded with '+' as space, and its value as sent (*raw, *rawlen;
 * a pair without '=' has an empty one).  1 when a pair was read, 0 at the
 * end, -1 when the key is badly encoded.  The one parser of query strings:
 * valid.c's agora_query_get and agora_query_next both read through it.
 */
int
agora_query_pair(struct agora_req *r, const char **pos, const char **key,
    const char **raw, size_t *rawlen)
{
	const char *p, *amp, *eq, *end;

	p = *pos == NULL ? r->query : *pos;
	while (p != NULL && *p == '&')
		p++;
	if (p == NULL || *p == '\0')
		return 0;
	amp = strchr(p, '&');
	end = amp != NULL ? amp : p + strlen(p);
	eq = memchr(p, '=', (size_t)(end - p));
	*pos = end;
	*key = agora_url_decode(r, p, (size_t)((eq != NULL ? eq : end) - p), 1);
	*raw = eq != NULL ? eq + 1 : end;
	*rawlen = (size_t)(end - *raw);
	return *key != NULL ? 1 : -1;
}
