/*
 * notify.c: telling customers what became of their orders.
 *
 * An order event queues a notify.order row (order.created stands for
 * "received"); its handler fans it out into one notification per channel
 * of notify_channels, each with a notify.send row of its own, so that
 * each channel is retried on its own and one failing never holds up or
 * repeats another.  The notification rows are unique per order, event and
 * channel, so a fan-out that runs twice queues nothing new.
 *
 * Channels:
 *   log: a line in the worker's log (the default: nothing leaves the box);
 *   email: SMTP through libcurl, a multipart/alternative message (plain
 *     text and HTML, quoted-printable) with Date, a Message-ID that is the
 *     same on every attempt (so a receiver can drop a resend) and an RFC
 *     2047 subject, since curl's MIME API adds none of these;
 *   sms: a JSON POST {to, body} to sms_url with a bearer token and an
 *     Idempotency-Key.
 * Every attempt is recorded (notification_attempt()).  Delivery is at
 * least once: a worker that dies between the send and the record sends
 * again, with the same Message-ID and Idempotency-Key.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "httpc.h"
#include "worker.h"

#define ITEMS_LISTED 20
#define SUBJECT_CHUNK 45 /* bytes per encoded word: 60 base64 characters */

enum send { SEND_OK, SEND_RETRY, SEND_FAIL };

/* What follows a template's lead. */
enum extra { EXTRA_NONE, EXTRA_ITEMS, EXTRA_INVOICE, EXTRA_TRACKING };

/* Each template: what it says after the greeting, and what it adds. */
static const struct template
{
	const char *name;
	const char *lead;
	enum extra extra;
}
templates[] = {
	{ "order_received",
	    "thank you for your order. We have put these aside for you and "
	    "will write again when the payment is through:",
	    EXTRA_ITEMS },
	{ "payment_succeeded",
	    "we have received your payment. Your invoice is ready:",
	    EXTRA_INVOICE },
	{ "payment_failed",
	    "the payment for your order did not go through, so the order is "
	    "closed and nothing was charged. You are welcome to order again.",
	    EXTRA_NONE },
	{ "order_cancelled",
	    "your order is cancelled. If it was paid, the refund is on its "
	    "way to your card.",
	    EXTRA_NONE },
	{ "order_shipped", "your order has left our warehouse.",
	    EXTRA_TRACKING },
};

struct message {
	const char *id, *channel, *recipient, *subject, *template;
	const struct template *tpl;
	const char *customer;
	struct json_object *doc;
	const struct agora_config *cfg;
	char *text, *html;
	size_t text_len, html_len;
};

/* --- fan-out ----------------------------------------------------------------
 */

enum outcome
handle_fanout(struct worker *w, struct job *j)
{
	const char *vals[4];
	struct agora_req *r = worker_req_reset(w);
	enum agora_err rc;

	vals[0] = job_id(j, "order_id");
	vals[1] = strcmp(j->topic, "order.created") == 0
	    ? "order_received"
	    : job_string(j, "template");
	if (vals[0] == NULL || vals[1] == NULL)
		return job_bad(j, "no order_id or template");
	/* The configuration allows only log, email and sms between commas. */
	vals[2] = agora_printf(r, "{%s}", w->ctx.cfg.notify_channels);
	if (vals[2] == NULL)
		return job_db_failed(j, AGORA_E_TOO_LARGE);
	vals[3] = w->ctx.cfg.notify_unverified ? "true" : "false";
	if ((rc = agora_db_query(r, "notify_fanout", 4, vals, NULL)) !=
	    AGORA_OK)
		return job_db_failed(j, rc);
	return OUT_DONE;
}

/* --- bodies -----------------------------------------------------------------
 */

void
html_put(FILE *f, const char *s)
{
	for (; *s != '\0'; s++)
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
}

/* A template by name; one the table lacks says the shipped words alone. */
static const struct template *
template_of(const char *name)
{
	static const struct template other = { "",
		"your order has left our warehouse.", EXTRA_NONE };
	size_t i;

	for (i = 0; i < AGORA_NELEM(templates); i++)
		if (strcmp(templates[i].name, name) == 0)
			return &templates[i];
	return &other;
}

/* The order's lines, as text and as HTML list items. */
static void
put_items(struct message *m, FILE *t, FILE *h)
{
	struct json_object *items, *it;
	size_t i, n;

	if (!json_object_object_get_ex(m->doc, "items", &items) ||
	    !json_object_is_type(items, json_type_array))
		return;
	n = json_object_array_length(items);
	fputs("<ul>\n", h);
	for (i = 0; i < n && i < ITEMS_LISTED; i++) {
		it = json_object_array_get_idx(items, i);
		fprintf(t, "  %lld x %s (%s)\r\n", doc_int(it, "quantity"),
		    doc_str(it, "name"), doc_str(it, "sku"));
		fprintf(h, "<li>%lld &times; ", doc_int(it, "quantity"));
		html_put(h, doc_str(it, "name"));
		fputs("</li>\n", h);
	}
	if (n > ITEMS_LISTED) {
		fprintf(t, "  and %zu more\r\n", n - ITEMS_LISTED);
		fprintf(h, "<li>and %zu more</li>\n", n - ITEMS_LISTED);
	}
	fputs("</ul>\n", h);
}

/* A mail's two bodies, text and HTML, as streams into memory. */
int
mail_open(FILE **t, char **text, size_t *text_len, FILE **h, char **html,
    size_t *html_len)
{
	*t = open_memstream(text, text_len);
	*h = open_memstream(html, html_len);
	if (*t != NULL && *h != NULL)
		return 0;
	if (*t != NULL)
		fclose(*t);
	if (*h != NULL)
		fclose(*h);
	return -1;
}

/* Close both, whatever happens: -1 when either failed. */
int
mail_close(FILE *t, FILE *h)
{
	int rc = ferror(t) || ferror(h) ? -1 : 0;

	if (fclose(t) != 0)
		rc = -1;
	if (fclose(h) != 0)
		rc = -1;
	return rc;
}

static int
compose(struct message *m)
{
	FILE *t, *h;
	char total[64], link[512];

	if (mail_open(&t, &m->text, &m->text_len, &h, &m->html, &m->html_len) !=
	    0)
		return -1;
	doc_money(total, sizeof(total), doc_int(m->doc, "total_cents"),
	    doc_str(m->doc, "currency"));
	snprintf(link, sizeof(link), "%s/api/v1/orders/%s/invoice",
	    m->cfg->public_url, doc_str(m->doc, "id"));
	fprintf(t, "Hello %s,\r\n\r\n%s\r\n\r\n", m->customer, m->tpl->lead);
	fputs("<!DOCTYPE html>\n<html><body>\n<p>Hello ", h);
	html_put(h, m->customer);
	fprintf(h, ",</p>\n<p>%s</p>\n", m->tpl->lead);
	if (m->tpl->extra == EXTRA_ITEMS)
		put_items(m, t, h);
	if (m->tpl->extra == EXTRA_INVOICE) {
		fprintf(t, "  %s\r\n", link);
		fputs("<p><a href=\"", h);
		html_put(h, link);
		fputs("\">Your invoice (PDF)</a></p>\n", h);
	}
	if (m->tpl->extra == EXTRA_TRACKING &&
	    *doc_str(m->doc, "tracking_number") != '\0') {
		fprintf(t, "Tracking number: %s\r\n",
		    doc_str(m->doc, "tracking_number"));
		fputs("<p>Tracking number: ", h);
		html_put(h, doc_str(m->doc, "tracking_number"));
		fputs("</p>\n", h);
	}
	fprintf(t, "\r\nOrder %s, total %s.\r\n\r\n%s\r\n",
	    doc_str(m->doc, "id"), total, m->cfg->seller_name);
	fprintf(
	    h, "<p>Order %s, total %s.</p>\n<p>", doc_str(m->doc, "id"), total);
	html_put(h, m->cfg->seller_name);
	fputs("</p>\n</body></html>\n", h);
	return mail_close(t, h);
}

/* --- email ------------------------------------------------------------------
 */

/*
 * s as RFC 2047 encoded words when it is not plain ASCII: base64 chunks
 * that never split a UTF-8 character, separated by spaces, which readers
 * drop between encoded words.
 */
static void
rfc2047(char *out, size_t len, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char b64[sodium_base64_ENCODED_LEN(
	    SUBJECT_CHUNK, sodium_base64_VARIANT_ORIGINAL)];
	size_t n, used = 0, i;

	for (i = 0; p[i] != '\0' && p[i] >= 0x20 && p[i] < 0x7f; i++)
		;
	if (p[i] == '\0') {
		snprintf(out, len, "%s", s);
		return;
	}
	*out = '\0';
	while (*p != '\0' && used < len) {
		n = strlen((const char *)p);
		if (n > SUBJECT_CHUNK) {
			n = SUBJECT_CHUNK;
			while (n > 0 && (p[n] & 0xC0) == 0x80)
				n--;
			if (n == 0) /* not UTF-8: cut anywhere */
				n = SUBJECT_CHUNK;
		}
		sodium_bin2base64(
		    b64, sizeof(b64), p, n, sodium_base64_VARIANT_ORIGINAL);
		used += (size_t)snprintf(out + used, len - used,
		    "%s=?UTF-8?B?%s?=", used > 0 ? " " : "", b64);
		p += n;
	}
}

/*
 * A From display name: encoded words when it is not ASCII, else a quoted
 * string, so that a comma or quote in seller_name cannot split the
 * address (RFC 5322 section 3.2.4).
 */
static void
display_name(char *out, size_t len, const char *name)
{
	size_t i, j = 0;

	rfc2047(out, len, name);
	if (strncmp(out, "=?", 2) == 0 || len < 3)
		return;
	out[j++] = '"';
	for (i = 0; name[i] != '\0' && j + 3 < len; i++) {
		if (name[i] == '"' || name[i] == '\\')
			out[j++] = '\\';
		out[j++] = name[i];
	}
	out[j++] = '"';
	out[j] = '\0';
}

/* One header line for curl's list, with CR and LF taken out. */
static struct curl_slist *
header(struct curl_slist *h, const char *name, const char *value)
{
	char line[1024];
	struct curl_slist *t;
	char *c;

	if (h == NULL)
		return NULL;
	snprintf(line, sizeof(line), "%s: %s", name, value);
	for (c = line; *c != '\0'; c++)
		if (*c == '\r' || *c == '\n')
			*c = ' ';
	if ((t = curl_slist_append(h, line)) == NULL)
		curl_slist_free_all(h);
	return t;
}

static struct curl_slist *
mail_headers(const struct message *m)
{
	const struct agora_config *cfg = m->cfg;
	const char *domain = strchr(cfg->smtp_from, '@');
	char date[64], subject[512], from[512], name[256], mid[256];
	struct curl_slist *h;
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	rfc2047(subject, sizeof(subject), m->subject);
	display_name(name, sizeof(name), cfg->seller_name);
	snprintf(from, sizeof(from), "%s <%s>", name, cfg->smtp_from);
	snprintf(mid, sizeof(mid), "<notification-%s@%s>", m->id,
	    domain != NULL ? domain + 1 : "agora.invalid");
	h = header(curl_slist_append(NULL, "MIME-Version: 1.0"), "Date", date);
	h = header(h, "From", from);
	h = header(h, "To", m->recipient);
	h = header(h, "Subject", subject);
	return header(h, "Message-ID", mid);
}

/* The multipart/alternative body, inside the message's own multipart. */
static curl_mime *
mail_body(CURL *c, const struct message *m)
{
	curl_mime *mime = curl_mime_init(c), *alt = curl_mime_init(c);
	curl_mimepart *part;

	if (mime == NULL || alt == NULL)
		goto fail;
	if ((part = curl_mime_addpart(alt)) == NULL ||
	    curl_mime_data(part, m->text, m->text_len) != CURLE_OK ||
	    curl_mime_type(part, "text/plain; charset=utf-8") != CURLE_OK ||
	    curl_mime_encoder(part, "quoted-printable") != CURLE_OK)
		goto fail;
	if ((part = curl_mime_addpart(alt)) == NULL ||
	    curl_mime_data(part, m->html, m->html_len) != CURLE_OK ||
	    curl_mime_type(part, "text/html; charset=utf-8") != CURLE_OK ||
	    curl_mime_encoder(part, "quoted-printable") != CURLE_OK)
		goto fail;
	if ((part = curl_mime_addpart(mime)) == NULL ||
	    curl_mime_subparts(part, alt) != CURLE_OK)
		goto fail;
	alt = NULL; /* the part owns it now */
	if (curl_mime_type(part, "multipart/alternative") != CURLE_OK)
		goto fail;
	return mime;
fail:
	curl_mime_free(alt);
	curl_mime_free(mime);
	return NULL;
}

static enum send
send_email(const struct message *m, char *err, size_t errlen)
{
	const struct agora_config *cfg = m->cfg;
	struct curl_slist *h = NULL, *rcpt = NULL;
	curl_mime *mime = NULL;
	char from[300], to[300];
	enum send rc = SEND_RETRY;
	CURLcode cc;
	CURL *c;

	if ((c = curl_easy_init()) == NULL) {
		snprintf(err, errlen, "smtp: out of memory");
		return SEND_RETRY;
	}
	snprintf(from, sizeof(from), "<%s>", cfg->smtp_from);
	snprintf(to, sizeof(to), "<%s>", m->recipient);
	if ((h = mail_headers(m)) == NULL ||
	    (rcpt = curl_slist_append(NULL, to)) == NULL ||
	    (mime = mail_body(c, m)) == NULL) {
		snprintf(err, errlen, "smtp: out of memory");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, cfg->smtp_url);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
	agora_curl_limits(c, cfg->notify_timeout_ms, AGORA_SMTP_PROTOCOLS);
	if (*cfg->smtp_user != '\0') {
		curl_easy_setopt(c, CURLOPT_USERNAME, cfg->smtp_user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, cfg->smtp_password);
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	}
	if ((cc = curl_easy_perform(c)) != CURLE_OK)
		snprintf(err, errlen, "smtp: %s", curl_easy_strerror(cc));
	else
		rc = SEND_OK;
out:
	curl_mime_free(mime);
	curl_slist_free_all(rcpt);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

/* --- sms --------------------------------------------------------------------
 */

/* The SMS gateway's answer (httpc.c: which are retried). */
static enum send
sms_result(const struct agora_http *h, char *err, size_t errlen)
{
	if (h->status < 0) {
		snprintf(err, errlen, "sms: %s", h->error);
		return SEND_RETRY;
	}
	switch (agora_http_judge(h->status)) {
	case AGORA_HTTP_DONE:
		return SEND_OK;
	case AGORA_HTTP_RETRY:
		snprintf(err, errlen, "sms: HTTP %ld", h->status);
		return SEND_RETRY;
	default:
		/* A number the provider refuses stays refused. */
		snprintf(err, errlen, "sms: HTTP %ld", h->status);
		return SEND_FAIL;
	}
}

static enum send
send_sms(const struct message *m, char *err, size_t errlen)
{
	const struct agora_config *cfg = m->cfg;
	struct json_object *o = json_object_new_object();
	struct agora_http h = { .method = "POST",
		.url = cfg->sms_url,
		.timeout_ms = cfg->notify_timeout_ms,
		.discard = 1 };
	char auth[300], key[80], body[400];
	enum send rc = SEND_RETRY;

	snprintf(body, sizeof(body), "%s. %s", m->subject,
	    m->tpl->extra == EXTRA_INVOICE ? "Invoice: " : "");
	if (m->tpl->extra == EXTRA_INVOICE)
		snprintf(body + strlen(body), sizeof(body) - strlen(body),
		    "%s/api/v1/orders/%s/invoice", cfg->public_url,
		    doc_str(m->doc, "id"));
	snprintf(
	    auth, sizeof(auth), "Authorization: Bearer %s", cfg->sms_token);
	snprintf(key, sizeof(key), "notification-%s", m->id);
	if (o == NULL ||
	    json_object_object_add(
	        o, "to", json_object_new_string(m->recipient)) != 0 ||
	    json_object_object_add(o, "body", json_object_new_string(body)) !=
	        0 ||
	    (h.headers = header(curl_slist_append(NULL, auth), "Content-Type",
	         "application/json")) == NULL ||
	    (h.headers = header(h.headers, "Idempotency-Key", key)) == NULL) {
		snprintf(err, errlen, "sms: out of memory");
		goto out;
	}
	if ((h.body = json_object_to_json_string_ext(
	         o, JSON_C_TO_STRING_PLAIN)) == NULL) {
		snprintf(err, errlen, "sms: out of memory");
		goto out;
	}
	h.body_len = strlen(h.body);
	agora_http_call(NULL, &h);
	rc = sms_result(&h, err, errlen);
out:
	agora_http_done(&h);
	curl_slist_free_all(h.headers);
	json_object_put(o);
	return rc;
}

/* --- the handler ------------------------------------------------------------
 */

/* A call to the SMTP server or the SMS gateway, in the metrics. */
static enum send
timed(enum wm_service svc,
    enum send (*send)(const struct message *, char *, size_t),
    const struct message *m, char *err, size_t errlen)
{
	struct timespec t0;
	enum send s;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	s = send(m, err, errlen);
	wmetrics_call(svc, s == SEND_OK, agora_us_since(&t0));
	return s;
}

static enum send
deliver(struct message *m, char *err, size_t errlen)
{
	if (compose(m) != 0) {
		snprintf(err, errlen, "out of memory");
		return SEND_RETRY;
	}
	if (strcmp(m->channel, "email") == 0)
		return timed(WM_SMTP, send_email, m, err, errlen);
	if (strcmp(m->channel, "sms") == 0)
		return timed(WM_SMS, send_sms, m, err, errlen);
	agora_log("info", "notification %s (%s) to %s: %s", m->id, m->template,
	    m->recipient, m->subject);
	return SEND_OK;
}

/*
 * Send one mail of the shop's own, not an order's (account.c): text and
 * HTML, with the Message-ID <notification-id@...>.  0 when sent.
 */
int
notify_mail(const struct agora_config *cfg, const char *id, const char *to,
    const char *subject, char *text, size_t text_len, char *html,
    size_t html_len, char *err, size_t errlen)
{
	struct message m;

	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.id = id;
	m.recipient = to;
	m.subject = subject;
	m.text = text;
	m.text_len = text_len;
	m.html = html;
	m.html_len = html_len;
	return timed(WM_SMTP, send_email, &m, err, errlen) == SEND_OK ? 0 : -1;
}

static enum outcome
record(struct worker *w, struct job *j, const char *id, enum send s)
{
	const char *vals[4];
	int final = s == SEND_FAIL || job_last_attempt(w, j);

	vals[0] = id;
	vals[1] = s == SEND_OK ? "true" : "false";
	vals[2] = s == SEND_OK ? NULL : j->error;
	vals[3] = final ? "true" : "false";
	/* Unrecorded, a sent notification would stay pending: try again
	 * (delivery is at least once). */
	if (agora_db_query(worker_req_reset(w), "notify_attempt", 4, vals,
	        NULL) != AGORA_OK) {
		snprintf(j->error, sizeof(j->error),
		    "database: the attempt was not recorded");
		return OUT_RETRY;
	}
	if (s == SEND_OK)
		return OUT_DONE;
	return s == SEND_FAIL ? OUT_FAIL : OUT_RETRY;
}

enum outcome
handle_notify(struct worker *w, struct job *j)
{
	const char *id = job_id(j, "notification_id"), *vals[1];
	struct message m;
	enum outcome oc;
	PGresult *res;
	enum agora_err rc;
	enum send s;

	if (id == NULL)
		return job_bad(j, "no notification_id");
	vals[0] = id;
	if ((rc = agora_db_query(worker_req_reset(w), "notify_source", 1, vals,
	         &res)) != AGORA_OK)
		return job_db_failed(j, rc);
	if (PQntuples(res) != 1)
		return OUT_DONE; /* sent (or given up) already */
	memset(&m, 0, sizeof(m));
	m.id = id;
	m.cfg = &w->ctx.cfg;
	m.channel = PQgetvalue(res, 0, 0);
	m.recipient = PQgetvalue(res, 0, 1);
	m.subject = PQgetvalue(res, 0, 2);
	m.template = PQgetvalue(res, 0, 3);
	m.tpl = template_of(m.template);
	m.customer = PQgetvalue(res, 0, 6);
	if ((m.doc = doc_parse(res, 0, 5)) == NULL)
		return job_bad(j, "unreadable order document");
	s = deliver(&m, j->error, sizeof(j->error));
	oc = record(w, j, id, s);
	json_object_put(m.doc);
	free(m.text);
	free(m.html);
	return oc;
}
