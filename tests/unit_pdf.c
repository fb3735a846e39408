/*
 * unit_pdf.c: invoice PDFs: they render, the same order gives the same
 * bytes (so a retried invoice step stores what it stored before), long
 * orders run onto more pages, and a missing font is an error, not a blank
 * invoice.  tests/worker_invoices.py reads the text back with pdftotext.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "worker.h"

static struct json_object *
order(int lines)
{
	struct json_object *o = json_object_new_object();
	struct json_object *items = json_object_new_array(), *it;
	int i;

	for (i = 0; i < lines; i++) {
		it = json_object_new_object();
		json_object_object_add(it, "name",
		    json_object_new_string(
		        "Gr\xc3\xbc\xc3\x9f"
		        "e \xc5\xbdlu\xc5\xa5ou\xc4\x8dk\xc3\xbd "
		        "with a name far too long to fit its column"));
		json_object_object_add(
		    it, "sku", json_object_new_string("SKU-1"));
		json_object_object_add(it, "quantity", json_object_new_int(2));
		json_object_object_add(
		    it, "unit_price_cents", json_object_new_int64(1999));
		json_object_object_add(
		    it, "line_total_cents", json_object_new_int64(3998));
		json_object_array_add(items, it);
	}
	json_object_object_add(o, "id", json_object_new_string("42"));
	json_object_object_add(o, "currency", json_object_new_string("EUR"));
	json_object_object_add(o, "items", items);
	json_object_object_add(
	    o, "subtotal_cents", json_object_new_int64(3998LL * lines));
	json_object_object_add(
	    o, "total_cents", json_object_new_int64(3998LL * lines));
	return o;
}

static int
render(struct agora_config *cfg, struct json_object *doc, char **pdf,
    size_t *len, char *err, size_t errlen)
{
	struct invoice inv;

	memset(&inv, 0, sizeof(inv));
	inv.cfg = cfg;
	inv.doc = doc;
	inv.number = "INV-00000042";
	inv.date = "2026-11-22";
	inv.customer_name = "Ana";
	inv.customer_email = "ana@example.com";
	return invoice_render(&inv, pdf, len, err, errlen);
}

/* The number of /Type /Page objects (not /Pages). */
static int
pages(const char *pdf, size_t len)
{
	const char *p = pdf, *end = pdf + len;
	int n = 0;

	if (pdf == NULL)
		return -1;
	while ((p = memmem(p, (size_t)(end - p), "/Type /Page", 11)) != NULL) {
		p += 11;
		if (p < end && *p != 's')
			n++;
	}
	return n;
}

int
main(void)
{
	struct agora_config cfg;
	struct json_object *one = order(1), *many = order(120);
	char *a = NULL, *b = NULL, *c = NULL, *d = NULL, err[256];
	size_t alen = 0, blen = 0, clen = 0, dlen = 0;
	int rc, n;

	agora_config_defaults(&cfg);
	/* Each render before its check: argument order is unspecified. */
	rc = render(&cfg, one, &a, &alen, err, sizeof(err));
	tap_ok(rc == 0 && alen > 1000 && memcmp(a, "%PDF-", 5) == 0,
	    "an invoice renders (%zu bytes) %s", alen, rc != 0 ? err : "");
	rc = render(&cfg, one, &b, &blen, err, sizeof(err));
	tap_ok(rc == 0 && a != NULL && alen == blen && memcmp(a, b, alen) == 0,
	    "the same order gives the same bytes");
	tap_ok(a != NULL && memmem(a, alen, "CreationDate", 12) == NULL,
	    "no creation time in the PDF");
	rc = render(&cfg, many, &c, &clen, err, sizeof(err));
	n = pages(c, clen);
	tap_ok(rc == 0 && n >= 3 && pages(a, alen) == 1,
	    "120 lines run onto %d pages; one line fits on one", n);
	free(cfg.invoice_font);
	cfg.invoice_font = strdup("/nonexistent/font.ttf");
	rc = render(&cfg, one, &d, &dlen, err, sizeof(err));
	tap_ok(rc != 0 && d == NULL && strstr(err, "font") != NULL,
	    "a missing font is an error: %s", err);
	free(a);
	free(b);
	free(c);
	free(d);
	json_object_put(one);
	json_object_put(many);
	agora_config_free(&cfg);
	return tap_done();
}
