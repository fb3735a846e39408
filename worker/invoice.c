/*
 * invoice.c: the invoice.create handler.  When an order is paid, render
 * its invoice as a PDF with libharu, store it, and record it together
 * with the move to completed.
 *
 * One invoice per order, however often the step runs: the storage key is
 * the order's (invoices/<order>.pdf), the rendering is deterministic (the
 * date is the day the order was paid, and the PDF carries no creation
 * time), and invoice_record() inserts the row once, in the transaction
 * that completes the order (or, for an order an admin moved on from paid
 * by hand, without moving it).  A run that stored the file and crashed
 * before recording it stores the same bytes again.
 *
 * The PDF itself is pdf.c's.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

static enum outcome
invoice_store(
    struct worker *w, struct job *j, const char *order, struct invoice *inv)
{
	const struct agora_config *cfg = &w->ctx.cfg;
	char key[64], sha[65], size[32];
	const char *vals[5];
	char *pdf = NULL;
	size_t len = 0;
	enum outcome oc = OUT_RETRY;
	struct timespec t0;
	PGresult *res;
	int put;
	enum agora_err rc;

	if (invoice_render(inv, &pdf, &len, j->error, sizeof(j->error)) != 0)
		goto out;
	snprintf(key, sizeof(key), "invoices/%s.pdf", order);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	put = agora_storage_put(cfg, cfg->storage, key, pdf, len,
	    "application/pdf", j->error, sizeof(j->error));
	wmetrics_call(WM_STORAGE, put == 0, agora_us_since(&t0));
	if (put != 0)
		goto out;
	agora_sha256_hex(pdf, len, sha);
	/* The next query frees the rows inv points into. */
	agora_log("info", "order %s: invoice %s rendered (%zu bytes)", order,
	    inv->number, len);
	snprintf(size, sizeof(size), "%zu", len);
	vals[0] = order;
	vals[1] = cfg->storage;
	vals[2] = key;
	vals[3] = size;
	vals[4] = sha;
	if ((rc = agora_db_query(worker_req_reset(w), "invoice_record", 5, vals,
	         &res)) != AGORA_OK) {
		oc = job_db_failed(j, rc);
		goto out;
	}
	agora_log("info", "order %s: invoice stored, order %s", order,
	    PQgetvalue(res, 0, 0));
	oc = OUT_DONE;
out:
	free(pdf);
	return oc;
}

enum outcome
handle_invoice(struct worker *w, struct job *j)
{
	const char *order = job_id(j, "order_id"), *vals[1];
	struct invoice inv;
	struct agora_req *r = worker_req_reset(w);
	enum outcome oc;
	PGresult *res;
	enum agora_err rc;

	if (order == NULL)
		return job_bad(j, "no order_id");
	vals[0] = order;
	if ((rc = agora_db_query(r, "invoice_source", 1, vals, &res)) !=
	    AGORA_OK)
		return job_db_failed(j, rc);
	/* It has its invoice (the step ran), or was cancelled meanwhile. */
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 6), "t") != 0)
		return OUT_DONE;
	memset(&inv, 0, sizeof(inv));
	inv.cfg = &w->ctx.cfg;
	if ((inv.doc = doc_parse(res, 0, 1)) == NULL)
		return job_bad(j, "unreadable order document");
	inv.customer_name = PQgetvalue(res, 0, 2);
	inv.customer_email = PQgetvalue(res, 0, 3);
	inv.date = PQgetvalue(res, 0, 4);
	inv.number = PQgetvalue(res, 0, 5);
	oc = invoice_store(w, j, order, &inv);
	json_object_put(inv.doc);
	return oc;
}
