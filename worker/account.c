/*
 * account.c: the mails about an account itself: the link that verifies
 * its email address, and the one that sets a new password (sql/0024).
 *
 * The API queues an account.mail row with the id of an account_tokens
 * row; the token itself is made here, when the mail is sent, and only its
 * SHA-256 goes into the database, in the same statement that checks the
 * row is still worth a mail (unused, unexpired, for the address the
 * account has now).  A retry makes a new token, and the link of a mail
 * that went out before a crash stops working: the newer mail's works.
 * Without the email channel (notify_channels) nothing can be sent; the
 * row is done, with a warning in the log.
 *
 * A forgotten password comes as an account.forgot row with the address
 * as typed: POST /auth/password/forgot writes one for any address, so
 * that its work and its time are the same whether an account has it or
 * not, and the lookup happens here, queueing the reset mail if one does.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "worker.h"

struct account_mail {
	const char *purpose, *email, *name, *expires, *link;
	const struct agora_config *cfg;
	char *text, *html;
	size_t text_len, html_len;
};

/* What each purpose says: its subject, and the lines around the link. */
static const struct wording {
	const char *purpose, *path, *subject, *lead, *after;
} wordings[] = {
	{ "verify", "/verify-email", "Confirm your email address",
	    "to confirm that this is your email address, open this link:",
	    "If you did not make an account with us, ignore this mail." },
	{ "reset", "/reset-password", "Reset your password",
	    "someone (we hope you) asked to reset the password of your "
	    "account. To choose a new one, open this link:",
	    "If you did not ask for this, ignore this mail: your password "
	    "stays as it is." },
};

static const struct wording *
wording_of(const char *purpose)
{
	size_t i;

	for (i = 0; i < AGORA_NELEM(wordings); i++)
		if (strcmp(wordings[i].purpose, purpose) == 0)
			return &wordings[i];
	return NULL;
}

static int
compose(struct account_mail *m, const struct wording *w)
{
	FILE *t, *h;

	if (mail_open(&t, &m->text, &m->text_len, &h, &m->html, &m->html_len) !=
	    0)
		return -1;
	fprintf(t, "Hello %s,\r\n\r\n%s\r\n\r\n  %s\r\n\r\n", m->name, w->lead,
	    m->link);
	fprintf(t, "It works once, until %s (UTC).\r\n%s\r\n\r\n%s\r\n",
	    m->expires, w->after, m->cfg->seller_name);
	fputs("<!DOCTYPE html>\n<html><body>\n<p>Hello ", h);
	html_put(h, m->name);
	fprintf(h, ",</p>\n<p>%s</p>\n<p><a href=\"", w->lead);
	html_put(h, m->link);
	fprintf(h, "\">%s</a></p>\n<p>It works once, until ", w->subject);
	html_put(h, m->expires);
	fprintf(h, " (UTC). %s</p>\n<p>", w->after);
	html_put(h, m->cfg->seller_name);
	fputs("</p>\n</body></html>\n", h);
	return mail_close(t, h);
}

static enum outcome
send_it(struct worker *w, struct job *j, struct account_mail *m, const char *id)
{
	const struct wording *wd = wording_of(m->purpose);
	const char *mid;
	int rc;

	if (wd == NULL)
		return job_bad(j, "unknown purpose");
	/* The request holds res, whose strings m points into: no reset. */
	m->link = agora_printf(
	    &w->req, "%s%s#token=%s", m->cfg->public_url, wd->path, m->link);
	mid = agora_printf(&w->req, "account-%s-%lld", id, j->attempts);
	if (m->link == NULL || mid == NULL || compose(m, wd) != 0) {
		snprintf(j->error, sizeof(j->error), "out of memory");
		return OUT_RETRY;
	}
	rc = notify_mail(m->cfg, mid, m->email, wd->subject, m->text,
	    m->text_len, m->html, m->html_len, j->error, sizeof(j->error));
	return rc == 0               ? OUT_DONE
	    : job_last_attempt(w, j) ? OUT_FAIL
	                             : OUT_RETRY;
}

enum outcome
handle_account_forgot(struct worker *w, struct job *j)
{
	const char *vals[3];
	struct agora_req *r = worker_req_reset(w);
	enum agora_err rc;

	if ((vals[0] = job_string(j, "email")) == NULL)
		return job_bad(j, "no email");
	vals[1] = agora_printf(r, "%lld", w->ctx.cfg.password_reset_ttl);
	/* Past the hour's password_reset_max, no mail: the requester was
	 * answered 202 long ago, whatever happens here. */
	vals[2] = agora_printf(r, "%lld", w->ctx.cfg.password_reset_max);
	if ((rc = agora_db_query(r, "account_forgot", 3, vals, NULL)) !=
	    AGORA_OK)
		return job_db_failed(j, rc);
	return OUT_DONE;
}

enum outcome
handle_account_mail(struct worker *w, struct job *j)
{
	const struct agora_config *cfg = &w->ctx.cfg;
	const char *id = job_id(j, "account_token_id"), *vals[2];
	char tok[AGORA_SECRET_TEXT], hash[65];
	struct account_mail m;
	enum outcome oc;
	PGresult *res;
	enum agora_err rc;

	if (id == NULL)
		return job_bad(j, "no account_token_id");
	if (strstr(cfg->notify_channels, "email") == NULL) {
		agora_log("warning",
		    "account mail %s not sent: email is not among "
		    "notify_channels",
		    id);
		return OUT_DONE;
	}
	agora_secret_new(tok, hash);
	vals[0] = id;
	vals[1] = hash;
	if ((rc = agora_db_query(worker_req_reset(w), "account_mail_source", 2,
	         vals, &res)) != AGORA_OK)
		return job_db_failed(j, rc);
	if (PQntuples(res) != 1)
		return OUT_DONE; /* used, expired, or the account changed */
	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.purpose = PQgetvalue(res, 0, 0);
	m.email = PQgetvalue(res, 0, 1);
	m.name = PQgetvalue(res, 0, 2);
	m.expires = PQgetvalue(res, 0, 3);
	m.link = tok;
	oc = send_it(w, j, &m, id);
	sodium_memzero(tok, sizeof(tok));
	free(m.text);
	free(m.html);
	return oc;
}
